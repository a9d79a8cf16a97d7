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


def test_cli_refuses_with_one_line_and_no_side_effect(tmp_path, base_model):
    sentinel = tmp_path / "PWNED"
    config = _config(base_model)
    config["config"]["layers"][1]["config"]["activation"] = _popen_payload(sentinel)
    path = _rewrite(base_model, tmp_path / "popen.keras", config)
    result = run_cli("evaluate", path, "--dataset", "fashion_mnist")
    assert_one_line_error(result, "refusing to load", "--unsafe")
    assert not sentinel.exists()


def test_old_keras_is_refused_at_import():
    code = "import keras; keras.__version__ = '3.10.0'; import keras_convnets"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert result.returncode != 0
    assert "keras_convnets needs keras >= 3.15.1" in result.stderr
