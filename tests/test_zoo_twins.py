"""The zoo models with a keras.applications twin compute the twin's function
and load its weights (ImageNet through Keras's cache, or a local file).

No network: weights files are saved here from randomly initialized twins, and
`keras.utils.get_file` is replaced where the ImageNet path is tested.
"""

from __future__ import annotations

import logging

import h5py
import keras
import numpy as np
import pytest

from keras_convnets.errors import UserInputError
from keras_convnets.models import get_model, pretrained
from keras_convnets.models.pretrained import (
    ImageNetPreprocessing,
    build_twin,
    copy_twin_weights,
    with_imagenet_preprocessing,
)


@pytest.fixture(autouse=True)
def _clear():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()


def _perturb_batch_norm(model, seed=0):
    """Random BN statistics and affine weights, so a wrongly paired or
    skipped normalization changes the output."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            values = []
            for w in layer.weights:
                shape = tuple(w.shape)
                if "variance" in w.path:
                    values.append(rng.uniform(0.5, 1.5, shape).astype("float32"))
                else:
                    values.append(rng.normal(0.0, 0.2, shape).astype("float32"))
            layer.set_weights(values)


def _logits(model):
    """The model's pre-softmax outputs (the classifier's activation removed)."""
    model.get_layer("predictions").activation = keras.activations.linear
    return model


# (zoo name, smallest size the twin builds at, slow): every zoo model with a
# keras.applications twin.
TWINS = [
    ("resnet50", 32, False),
    ("resnet50_v2", 32, False),
    ("vgg16", 32, False),
    ("vgg19", 32, False),
    ("mobilenet", 32, False),
    ("resnet101", 32, True),
    ("resnet152", 32, True),
    ("resnet101_v2", 32, True),
    ("resnet152_v2", 32, True),
    ("inception_resnet_v2", 75, True),
]


@pytest.mark.parametrize(
    "name, size",
    [
        pytest.param(name, size, marks=pytest.mark.slow) if slow else (name, size)
        for name, size, slow in TWINS
    ],
)
def test_zoo_model_computes_its_twins_function(name, size):
    twin = build_twin(name, (size, size, 3), classes=7, classifier_activation=None)
    _perturb_batch_norm(twin)
    ours = _logits(get_model(name, (size, size, 3), 7))
    assert ours.count_params() == twin.count_params()
    assert copy_twin_weights(twin, ours, name) == []
    # Large inputs: VGG has no normalization and tiny outputs at random init.
    x = np.random.default_rng(1).normal(0, 100, (2, size, size, 3)).astype("float32")
    expected, got = np.asarray(twin(x)), np.asarray(ours(x))
    spread = expected.max() - expected.min()
    assert spread > 1e-3  # the comparison below can fail
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * spread)


@pytest.mark.parametrize("name", ["resnet50_v2", "mobilenet"])
def test_twins_agree_on_odd_sizes(name):
    # 45 px: odd feature maps where the stride-2 layers pad (ResNetV2 pads
    # 1 on each side, MobileNet only bottom/right: "same" padding differs).
    twin = build_twin(name, (45, 45, 3), classes=5, classifier_activation=None)
    _perturb_batch_norm(twin)
    ours = _logits(get_model(name, (45, 45, 3), 5))
    copy_twin_weights(twin, ours, name)
    x = np.random.default_rng(2).normal(size=(2, 45, 45, 3)).astype("float32")
    expected = np.asarray(twin(x))
    np.testing.assert_allclose(np.asarray(ours(x)), expected, rtol=0, atol=1e-5)


def test_resnet_v2_strides_in_the_last_block_of_a_stage():
    model = get_model("resnet50_v2", (64, 64, 3), 10)
    shape = {layer.name: layer.output.shape[1] for layer in model.layers}
    # conv2 runs at 16x16 until its last block, which halves it to 8x8.
    assert shape["conv2_block2_add"] == 16
    assert shape["conv2_block3_add"] == 8
    assert "conv2_block3_0_pool" in shape and "conv2_block3_0_conv" not in shape
    assert shape["conv5_block3_add"] == 2  # conv5 does not stride


# Weights files saved from randomly initialized twins.


def _save_twin(tmp_path, name, size, include_top=True, classes=5, legacy=False):
    twin = build_twin(name, (size, size, 3), include_top=include_top, classes=classes)
    _perturb_batch_norm(twin, seed=3)
    if legacy:  # the format of the published keras.applications files
        from keras.src.legacy.saving import legacy_h5_format

        path = str(tmp_path / f"{name}_legacy.h5")
        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, twin)
    else:
        path = str(tmp_path / f"{name}.weights.h5")
        twin.save_weights(path)
    return twin, path


@pytest.mark.parametrize("legacy", [False, True])
def test_weights_file_of_the_twin_gives_the_twins_outputs(tmp_path, legacy):
    twin, path = _save_twin(tmp_path, "mobilenet", 32, legacy=legacy)
    ours = get_model("mobilenet", (32, 32, 3), 5, weights=path)
    x = np.random.default_rng(4).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(twin(x)), atol=1e-6)


def test_other_classes_keep_a_fresh_head(tmp_path, caplog):
    twin, path = _save_twin(tmp_path, "resnet50_v2", 32, classes=5)
    fresh = get_model("resnet50_v2", (32, 32, 3), 3)
    keras.utils.set_random_seed(0)
    with caplog.at_level(logging.WARNING, logger=pretrained.__name__):
        ours = get_model("resnet50_v2", (32, 32, 3), 3, weights=path)
    assert "predictions freshly initialized" in caplog.text
    assert "5 classes" in caplog.text
    for layer in ("conv1_conv", "conv3_block4_2_conv", "post_bn"):
        for a, b in zip(
            ours.get_layer(layer).get_weights(), twin.get_layer(layer).get_weights()
        ):
            np.testing.assert_array_equal(a, b)
    assert ours.get_layer("predictions").kernel.shape == (2048, 3)
    assert not np.array_equal(
        ours.get_layer("conv1_conv").get_weights()[0],
        fresh.get_layer("conv1_conv").get_weights()[0],
    )


def test_vgg_backbone_file_keeps_fresh_dense_layers(tmp_path, caplog):
    twin, path = _save_twin(tmp_path, "vgg16", 32, include_top=False)
    with caplog.at_level(logging.WARNING, logger=pretrained.__name__):
        ours = get_model("vgg16", (32, 32, 3), 4, weights=path)
    assert "fc1, fc2, predictions freshly initialized" in caplog.text
    features = keras.Model(ours.inputs, ours.get_layer("block5_pool").output)
    x = np.random.default_rng(5).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(features(x)), np.asarray(twin(x)), atol=1e-5)


def test_weights_of_another_architecture_are_refused(tmp_path):
    _, path = _save_twin(tmp_path, "mobilenet", 32)
    with pytest.raises(UserInputError, match="mobilenet: cannot load .*MobileNet"):
        get_model("mobilenet", (32, 32, 3), 5, weights=path, alpha=0.5)
    _, path = _save_twin(tmp_path, "mobilenet", 32, include_top=False)
    with pytest.raises(UserInputError, match="vgg16: cannot load .*VGG16"):
        get_model("vgg16", (32, 32, 3), 5, weights=path)


def test_bad_weights_requests_are_one_line_errors(tmp_path):
    cases = [
        (("resnet18", (32, 32, 3), 10, "imagenet"), "'resnet18' has no pretrained"),
        (("resnet50", (32, 32, 1), 10, "imagenet"), "need RGB inputs"),
        (("resnet50", (32, 32, 3), 10, str(tmp_path / "no.h5")), "must be 'imagenet'"),
        (("resnet50", (32, 32, 3), 10, "imagenet21k"), "must be 'imagenet'"),
    ]
    for (name, shape, classes, weights), message in cases:
        with pytest.raises(UserInputError, match=message) as info:
            get_model(name, shape, classes, weights=weights)
        assert "\n" not in str(info.value)


# ImageNet weights through keras.utils.get_file (replaced: no network here).


def test_imagenet_weights_come_from_kerass_cache_with_its_hash(tmp_path, monkeypatch):
    from keras.src.applications import resnet as keras_resnet

    twin, path = _save_twin(tmp_path, "resnet50_v2", 32, include_top=False)
    calls = []

    def get_file(fname, origin, cache_subdir, file_hash):
        calls.append((fname, origin, cache_subdir, file_hash))
        return path

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    ours = get_model("resnet50_v2", (32, 32, 3), 10, weights="imagenet")
    name = "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert calls == [
        (
            name,
            keras_resnet.BASE_WEIGHTS_PATH + name,
            "models",
            keras_resnet.WEIGHTS_HASHES["resnet50v2"][1],
        )
    ]
    np.testing.assert_array_equal(
        ours.get_layer("conv4_block6_3_conv").get_weights()[0],
        twin.get_layer("conv4_block6_3_conv").get_weights()[0],
    )


def test_offline_imagenet_weights_is_one_clear_line(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/x: None")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(UserInputError) as info:
        get_model("mobilenet", (32, 32, 3), 1000, weights="imagenet")
    message = str(info.value)
    assert message.startswith("mobilenet: could not download the ImageNet weights")
    assert "mobilenet_1_0_224_tf.h5" in message and "no cached copy" in message
    assert "\n" not in message


# Preprocessing in the model, for images in [0, 1].


@pytest.mark.parametrize(
    "mode, reference",
    [
        ("caffe", keras.applications.resnet50.preprocess_input),
        ("tf", keras.applications.mobilenet.preprocess_input),
    ],
)
def test_imagenet_preprocessing_matches_preprocess_input(mode, reference):
    images = np.random.default_rng(6).uniform(0, 1, (2, 5, 5, 3)).astype("float32")
    got = np.asarray(ImageNetPreprocessing(mode)(images))
    np.testing.assert_allclose(got, reference(images * 255.0), atol=1e-4)
    grey = images[..., :1]
    expected = reference(np.repeat(grey, 3, axis=-1) * 255.0)
    np.testing.assert_allclose(
        np.asarray(ImageNetPreprocessing(mode)(grey)), expected, atol=1e-4
    )


def test_preprocessing_front_is_flat_and_round_trips(tmp_path):
    model = get_model("mobilenet", (32, 32, 3), 4)
    wrapped = with_imagenet_preprocessing(model, "mobilenet", (32, 32, 1))
    assert not any(isinstance(layer, keras.Model) for layer in wrapped.layers)
    assert wrapped.get_layer("conv1") is model.get_layer("conv1")
    grey = np.random.default_rng(7).uniform(0, 1, (2, 32, 32, 1)).astype("float32")
    expected = model(np.repeat(grey, 3, axis=-1) * 2.0 - 1.0)
    np.testing.assert_allclose(np.asarray(wrapped(grey)), expected, atol=1e-6)
    wrapped.save(tmp_path / "m.keras")
    from keras_convnets.inference import load_model

    again, _ = load_model(str(tmp_path / "m.keras"))  # the safe loader's allowlist
    np.testing.assert_allclose(np.asarray(again(grey)), expected, atol=1e-6)


# `train --weights`: the config field and the model train builds.


def _info(shape, classes):
    from keras_convnets.data.datasets import DatasetInfo

    return DatasetInfo(
        name="test",
        source="test",
        image_shape=shape,
        num_classes=classes,
        class_names=tuple(str(i) for i in range(classes)),
        sizes={},
        validation_fraction=0.1,
        train_fraction=1.0,
        seed=0,
        notes=(),
    )


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_builds_the_pretrained_model_behind_preprocessing(tmp_path, precision):
    from keras_convnets.training.config import TrainConfig
    from keras_convnets.training.train import build_model

    twin, path = _save_twin(tmp_path, "mobilenet", 32, classes=5)
    config = TrainConfig(model="mobilenet", weights=path, precision=precision)
    model = build_model(config.validate(), _info((32, 32, 1), 5))
    assert model.input_shape == (None, 32, 32, 1)
    assert model.get_layer("imagenet_input").mode == "tf"
    assert model.output.dtype == "float32"
    # The pretrained weights survive the float32-output clone of bf16.
    pairs = [
        ("conv1", "conv1"),
        ("conv_dw_13_pw", "conv_pw_13"),
        ("predictions", "conv_preds"),
    ]
    for ours, theirs in pairs:
        np.testing.assert_array_equal(
            model.get_layer(ours).get_weights()[0].ravel(),
            twin.get_layer(theirs).get_weights()[0].ravel(),
        )
    grey = np.random.default_rng(8).uniform(0, 1, (2, 32, 32, 1)).astype("float32")
    expected = np.asarray(twin(np.repeat(grey, 3, axis=-1) * 2.0 - 1.0))
    atol = 1e-5 if precision == "fp32" else 0.05
    np.testing.assert_allclose(np.asarray(model(grey)), expected, atol=atol)


def test_train_config_refuses_weights_without_a_twin():
    from keras_convnets.training.config import TrainConfig

    with pytest.raises(UserInputError, match="'simple_cnn' has no pretrained"):
        TrainConfig(model="simple_cnn", weights="imagenet").validate()
    # A searched cell (`--genotype`, i.e. model nas_cell_net) has no twin either.
    with pytest.raises(UserInputError, match="'nas_cell_net' has no pretrained"):
        TrainConfig(
            model="nas_cell_net",
            model_kwargs={"genotype": "g.json"},
            weights="imagenet",
        ).validate()


def test_cli_train_weights_error_is_one_line(tmp_path, capsys):
    from keras_convnets.cli import main

    argv = ["train", "--model", "resnet18", "--weights", "imagenet"]
    assert main([*argv, "--workdir", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "'resnet18' has no pretrained weights" in lines[0]


def test_copy_checks_every_shape():
    narrow = build_twin("mobilenet", (32, 32, 3), classes=5, alpha=0.25)
    with pytest.raises(UserInputError, match="weights of layer 'conv1' .* do not fit"):
        copy_twin_weights(narrow, get_model("mobilenet", (32, 32, 3), 5), "mobilenet")
    with pytest.raises(UserInputError, match="different architecture"):
        copy_twin_weights(narrow, get_model("mobilenet_tiny", (32, 32, 3), 5), "x")
