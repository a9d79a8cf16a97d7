"""Untrusted model files: crafted .keras archives are refused, nothing runs."""

import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from keras_convnets.errors import UserInputError
from keras_convnets.inference import load_model
from keras_convnets.training.safety import check_model_archive


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "base.keras"
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs)).save(path)
    return path


def _rewrite(base, out, config=None, extra=None):
    """Copies a .keras archive with a replaced config and/or extra members."""
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "config.json" and config is not None:
                data = json.dumps(config)
            dst.writestr(name, data)
        for name, data in (extra or {}).items():
            dst.writestr(name, data)
    return out


def _config(base):
    with zipfile.ZipFile(base) as archive:
        return json.loads(archive.read("config.json"))


def _popen_payload(sentinel):
    return {
        "module": "subprocess",
        "class_name": "Popen",
        "config": {"args": ["touch", str(sentinel)]},
        "registered_name": "subprocess.Popen",
    }


def test_a_plain_model_loads(base_model):
    check_model_archive(str(base_model))
    model, record = load_model(str(base_model))
    assert record is None and model.output_shape == (None, 2)


def test_lambda_layer_is_refused(tmp_path):
    inputs = keras.Input((4,))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(path)
    with pytest.raises(UserInputError, match="Lambda"):
        load_model(str(path))
    # The user can opt in for a file they trust.
    model, _ = load_model(str(path), unsafe=True)
    np.testing.assert_allclose(model(np.ones((1, 4), "float32")), 2.0)


def test_config_naming_popen_is_refused_and_nothing_runs(tmp_path, base_model):
    sentinel = tmp_path / "PWNED"
    config = _config(base_model)
    config["config"]["layers"][1]["config"]["activation"] = _popen_payload(sentinel)
    path = _rewrite(base_model, tmp_path / "popen.keras", config)
    with pytest.raises(UserInputError, match=r"refusing to load.*subprocess\.Popen"):
        load_model(str(path))
    assert not sentinel.exists()


def test_top_level_foreign_class_is_refused(tmp_path, base_model):
    sentinel = tmp_path / "PWNED"
    path = _rewrite(base_model, tmp_path / "top.keras", _popen_payload(sentinel))
    with pytest.raises(UserInputError, match="refusing to load"):
        load_model(str(path))
    assert not sentinel.exists()


def test_registered_name_of_a_foreign_package_is_refused(tmp_path, base_model):
    config = _config(base_model)
    layer = config["config"]["layers"][1]
    layer["registered_name"] = "evil>Backdoor"
    path = _rewrite(base_model, tmp_path / "registered.keras", config)
    with pytest.raises(UserInputError, match="evil>Backdoor"):
        load_model(str(path))


def test_tfsm_layer_pointing_outside_is_refused(tmp_path, base_model):
    config = _config(base_model)
    dense = config["config"]["layers"][1]
    config["config"]["layers"][1] = {
        "module": "keras.layers",
        "class_name": "TFSMLayer",
        "config": {
            "name": "dense",
            "filepath": str(tmp_path / "outside"),
            "call_endpoint": "serve",
        },
        "registered_name": None,
        "name": "dense",
        "inbound_nodes": dense["inbound_nodes"],
    }
    path = _rewrite(base_model, tmp_path / "tfsm.keras", config)
    with pytest.raises(UserInputError, match="TFSMLayer"):
        load_model(str(path))


def test_path_traversal_member_is_refused(tmp_path, base_model):
    target = tmp_path / "escaped.txt"
    name = "../" * 12 + str(target).lstrip("/")
    path = _rewrite(base_model, tmp_path / "traversal.keras", extra={name: "x"})
    with pytest.raises(UserInputError, match="path traversal"):
        load_model(str(path))
    assert not target.exists()


def test_unexpected_member_and_non_zip_are_refused(tmp_path, base_model):
    path = _rewrite(
        base_model, tmp_path / "extra.keras", extra={"payload.py": "import os"}
    )
    with pytest.raises(UserInputError, match="unexpected archive member 'payload.py'"):
        load_model(str(path))
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(UserInputError, match="not a zip file"):
        load_model(str(junk))


def test_cli_refuses_the_file_writing_lambda_with_one_line(tmp_path):
    # The headline hole end to end: `visualize --what saliency` runs the model.
    sentinel = tmp_path / "thesis.pdf"
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Lambda(lambda t: t, name="lam")(inputs)
    x = keras.layers.Conv2D(2, 3, name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    source = tmp_path / "source.keras"
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(source)
    config = _config(source)
    _replace_lambdas(
        config, _WRITES_FILES["plot_image_gallery"], {"path": str(sentinel)}
    )
    path = _rewrite(source, tmp_path / "hole.keras", config)
    image = tmp_path / "x.png"
    keras.utils.save_img(image, np.zeros((8, 8, 1), "uint8"), scale=False)
    result = run_cli(
        "visualize", path, "--what", "saliency", "--images", image, "--out", tmp_path
    )
    assert_one_line_error(result, "refusing to load", "--unsafe")
    assert "safe_mode" not in result.stderr
    assert not sentinel.exists()


def test_old_keras_is_refused_at_import():
    code = "import keras; keras.__version__ = '3.10.0'; import keras_convnets"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert result.returncode != 0
    assert "keras_convnets needs keras >= 3.15.1" in result.stderr


# ------------------------------------------------------------ the allowlist

_WRITES_FILES = {
    "plot_image_gallery": {
        "module": "keras.visualization",
        "class_name": "function",
        "config": "plot_image_gallery",
        "registered_name": "function",
    },
    "get_file": {
        "module": "keras.utils",
        "class_name": "function",
        "config": "get_file",
        "registered_name": "function",
    },
    "os.system": {
        "module": "os",
        "class_name": "function",
        "config": "system",
        "registered_name": "system",
    },
    "builtins.open": {
        "module": "builtins",
        "class_name": "function",
        "config": "open",
        "registered_name": "function",
    },
}


def _nested_lambda_model(depth):
    """A Lambda (identity) inside `depth` levels of Sequential/Functional."""
    inputs = keras.Input((4,))
    core = keras.Model(inputs, keras.layers.Lambda(lambda x: x, name="lam")(inputs))
    for level in range(depth):
        if level % 2 == 0:
            core = keras.Sequential([keras.Input((4,)), core], name=f"seq{level}")
        else:
            inner = keras.Input((4,))
            core = keras.Model(inner, core(inner), name=f"fun{level}")
    outer = keras.Input((4,))
    return keras.Model(outer, keras.layers.Dense(2, name="dense")(core(outer)))


def _replace_lambdas(node, function, arguments):
    """Points every Lambda layer of a config at `function(**arguments)`."""
    stack, count = [node], 0
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class_name") == "Lambda":
                item["config"]["function"] = function
                item["config"]["arguments"] = arguments
                count += 1
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_lambda_calling_a_file_writing_keras_function_is_refused(tmp_path, depth):
    # The hole of issue 16: a named Keras function (not a lambda) that writes
    # any file passed Keras's safe_mode and the old "keras.* is fine" check.
    sentinel = tmp_path / "thesis.pdf"
    source = tmp_path / "source.keras"
    _nested_lambda_model(depth).save(source)
    config = _config(source)
    assert _replace_lambdas(
        config, _WRITES_FILES["plot_image_gallery"], {"path": str(sentinel)}
    )
    path = _rewrite(source, tmp_path / "hole.keras", config)
    with pytest.raises(
        UserInputError, match=r"refusing to load.*(Lambda|function).*--unsafe"
    ):
        load_model(str(path))
    assert not sentinel.exists()


@pytest.mark.parametrize("payload", sorted(_WRITES_FILES))
@pytest.mark.parametrize("key", ["activation", "kernel_initializer"])
def test_function_references_in_layer_configs_are_refused(
    tmp_path, base_model, key, payload
):
    config = _config(base_model)
    config["config"]["layers"][1]["config"][key] = _WRITES_FILES[payload]
    path = _rewrite(base_model, tmp_path / "fn.keras", config)
    with pytest.raises(UserInputError, match="refusing to load"):
        check_model_archive(str(path))


@pytest.mark.parametrize(
    "name",
    ["get_file", "plot_image_gallery", "keras.utils.get_file", "os.system", "open"],
)
def test_activation_names_outside_the_allowlist_are_refused(tmp_path, base_model, name):
    config = _config(base_model)
    config["config"]["layers"][1]["config"]["activation"] = name
    path = _rewrite(base_model, tmp_path / "name.keras", config)
    with pytest.raises(UserInputError, match=f"activation '{name}'"):
        check_model_archive(str(path))


def _dense(config):
    return config["config"]["layers"][1]


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        # A Keras 2-style object without `module`.
        (lambda d: d.pop("module"), "without a module"),
        (lambda d: d.update(module="keras.src.layers.core.dense"), "names keras.src"),
        (lambda d: d.update(class_name="TFSMLayer"), "TFSMLayer"),
        (lambda d: d.update(shared_object_id=1, function="x"), "unknown key"),
        (lambda d: d.update(registered_name="keras_convnets>Dense"), "registered_name"),
        (
            lambda d: d["config"].update(
                dtype={
                    "module": "keras",
                    "class_name": "DTypePolicy",
                    "config": {"name": "os.system"},
                    "registered_name": None,
                }
            ),
            "dtype policy",
        ),
        (lambda d: d["config"].update(dtype="object"), "dtype 'object'"),
        (
            lambda d: d["config"].update(
                bias_initializer={"class_name": "__lambda__", "config": {"value": ""}}
            ),
            "__lambda__",
        ),
        (
            lambda d: d.update(
                compile_config={
                    "optimizer": {
                        "module": "os",
                        "class_name": "system",
                        "config": {},
                        "registered_name": None,
                    }
                }
            ),
            "names os.system",
        ),
        (lambda d: d["config"].update(units=[[[[0]]]] * 1), None),
    ],
)
def test_objects_outside_the_allowlist_are_refused(
    tmp_path, base_model, mutate, fragment
):
    config = _config(base_model)
    mutate(_dense(config))
    path = _rewrite(base_model, tmp_path / "x.keras", config)
    if fragment is None:  # plain data is never refused by the walk
        check_model_archive(str(path))
        return
    with pytest.raises(UserInputError, match=fragment):
        check_model_archive(str(path))


def test_compile_config_allows_our_training_objects_only(tmp_path):
    from keras_convnets.training.config import TrainConfig
    from keras_convnets.training.train import build_optimizer

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    for schedule in ("one-cycle", "cosine"):
        model.compile(
            optimizer=build_optimizer(TrainConfig(schedule=schedule), 10),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
        path = tmp_path / f"{schedule}.keras"
        model.save(path)
        assert _config(path)["compile_config"]["optimizer"]
        load_model(str(path))
    config = _config(path)
    config["compile_config"]["loss"] = _popen_payload(tmp_path / "PWNED")
    bad = _rewrite(path, tmp_path / "bad.keras", config)
    with pytest.raises(UserInputError, match="subprocess.Popen"):
        check_model_archive(str(bad))
    # Schedules and optimizers are not layers: refused outside compile_config.
    config = _config(path)
    _dense(config)["config"]["kernel_initializer"] = config["compile_config"][
        "optimizer"
    ]
    bad = _rewrite(path, tmp_path / "bad2.keras", config)
    with pytest.raises(UserInputError, match="keras.optimizers"):
        check_model_archive(str(bad))


def test_the_walk_is_bounded_in_depth(tmp_path, base_model):
    config = _config(base_model)
    deep = None
    for _ in range(200):
        deep = [deep]
    _dense(config)["config"]["units"] = deep
    path = _rewrite(base_model, tmp_path / "deep.keras", config)
    with pytest.raises(UserInputError, match="nests deeper than"):
        check_model_archive(str(path))


def test_tiny_zoo_models_pass_the_allowlist():
    # Config only (building is the cost): every tiny variant in bf16 wrapped
    # for test-time augmentation, as `train --precision bf16 --tta flip`
    # saves it; the round trip of real files is tested below.
    from keras_convnets.models import list_models
    from keras_convnets.models.tta import with_tta
    from keras_convnets.training.safety import check_config

    names = [n for n in list_models() if n.endswith("_tiny")]
    assert len(names) >= 5
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        for name in names:
            model = with_tta(keras_convnets_model(name))
            config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
            check_config(config, name)
    finally:
        keras.config.set_dtype_policy(previous)


def keras_convnets_model(name):
    from keras_convnets.models import get_model
    from keras_convnets.models._common import InputTooSmallError

    try:
        return get_model(name, (32, 32, 3), 3)
    except InputTooSmallError as e:
        return get_model(name, (e.min_size, e.min_size, 3), 3)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_saved_tta_augment_model_round_trips_through_the_safe_loader(
    tmp_path, precision
):
    from keras_convnets.layers import Augment
    from keras_convnets.models.tta import with_tta

    keras.config.set_dtype_policy(precision)
    try:
        inputs = keras.Input((8, 8, 1))
        x = Augment("flip-translate")(inputs)
        core = keras_convnets_model("simple_cnn_tiny")
        x = keras.layers.Resizing(32, 32)(x)
        x = keras.layers.Concatenate()([x, x, x])
        outputs = core(x)
        model = with_tta(keras.Model(inputs, outputs))
    finally:
        keras.config.set_dtype_policy("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded, _ = load_model(str(path))
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(
        loaded(x, training=False), model(x, training=False), atol=1e-6
    )


def test_augment_model_saved_before_the_layer_moved_still_loads(tmp_path):
    """`Augment` moved from keras_convnets.data.augment to keras_convnets.layers;
    files saved before name the old module, and must still pass the loader."""
    from keras_convnets.layers import Augment

    inputs = keras.Input((8, 8, 1))
    x = Augment("flip-translate", seed=0, name="augment")(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "new.keras"
    model.save(path)
    config = _config(path)
    (layer,) = [n for n in config["config"]["layers"] if n["name"] == "augment"]
    assert layer["module"] == "keras_convnets.layers.augment"
    layer["module"] = "keras_convnets.data.augment"
    old = _rewrite(path, tmp_path / "old.keras", config=config)
    loaded, _ = load_model(str(old))
    assert isinstance(loaded.get_layer("augment"), Augment)
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    # Another package's module with the same registered name is still refused.
    layer["module"] = "keras_convnets.data.datasets"
    with pytest.raises(UserInputError, match="refusing to load"):
        load_model(str(_rewrite(path, tmp_path / "bad.keras", config=config)))


def test_a_compiled_model_wrapped_for_tta_loads_safely(tmp_path):
    """What `train --tta flip` saves: the trained (compiled) classifier inside
    the TTA wrapper, so the file holds a nested `compile_config`. It is checked
    against the allowlist and dropped: the loaded model is not compiled."""
    from keras_convnets.models.tta import with_tta
    from keras_convnets.training.config import TrainConfig
    from keras_convnets.training.train import build_optimizer

    core = keras_convnets_model("simple_cnn_tiny")
    core.compile(
        optimizer=build_optimizer(TrainConfig(weight_decay=0.05), 10),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    model = with_tta(core, "flip")
    path = tmp_path / "tta.keras"
    model.save(path)
    nested = _config(path)["config"]["layers"]
    assert any(layer.get("compile_config") for layer in nested)
    loaded, _ = load_model(str(path))
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert all(
        getattr(layer, "optimizer", None) is None for layer in loaded._flatten_layers()
    )


def test_keras_safe_mode_text_becomes_pass_unsafe():
    from keras_convnets.inference import _load_error

    with pytest.raises(ValueError, match="safe_mode=False") as info:
        keras.saving.deserialize_keras_object(
            {"class_name": "__lambda__", "config": {"value": "x"}}, safe_mode=True
        )
    message = _load_error(info.value)
    assert "--unsafe" in message and "safe_mode" not in message
    assert "\n" not in message


def test_wrong_weight_shapes_name_the_variable_and_shapes(tmp_path, base_model):
    config = _config(base_model)
    _dense(config)["config"]["units"] = 3
    path = _rewrite(base_model, tmp_path / "shapes.keras", config)
    with pytest.raises(UserInputError) as info:
        load_model(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert "dense/kernel" in message, message
    assert "(4, 3)" in message and "(4, 2)" in message, message
