"""The `transfer` experiment: subsets, the backbone option, a quick run.

No network: the ImageNet download is made to fail on purpose, and the backbone
run uses `--backbone-weights random`.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from keras_convnets.errors import UserInputError
from keras_convnets.experiments import run_experiment, transfer


def test_labelled_subset_per_class():
    labels = np.repeat(np.arange(5), [30, 30, 30, 30, 4])
    pick = transfer.labelled_subset(labels, 10, np.random.default_rng(0))
    assert len(set(pick.tolist())) == len(pick) == 4 * 10 + 4  # all 4 of class 4
    assert np.bincount(labels[pick]).tolist() == [10, 10, 10, 10, 4]
    again = transfer.labelled_subset(labels, 10, np.random.default_rng(0))
    assert pick.tolist() == again.tolist()


# Slow: pretraining plus three methods at two label budgets (about a minute on
# 2 cores); `make test` covers the backbones and options below.
@pytest.mark.slow
def test_quick_run_structure(tmp_path, small_fashion_dir):
    transfer.run(str(tmp_path), quick=True, seed=0, data_dir=small_fashion_dir)
    d = tmp_path / "transfer"
    assert sorted(os.listdir(d)) == ["results.json", "summary.md", "transfer.png"]
    saved = json.loads((d / "results.json").read_text())
    assert saved["source_classes"][0] == "T-shirt/top"
    assert saved["target_classes"][-1] == "Ankle boot"
    assert saved["backbone"] == "simple_cnn" and saved["pretrain"]["epochs"] == 2
    assert list(saved["runs"]) == ["10", "50"]
    assert saved["runs"]["10"]["labelled_examples"] == 5 * 10
    for cell in (saved["runs"]["10"], saved["runs"]["50"]):
        for method in transfer.METHODS:
            c = cell[method]
            assert len(c["test_accuracy"]) == saved["repeats"] == 1
            assert 0.0 <= c["mean"] <= 1.0 and c["std"] == 0.0
            assert 1 <= c["best_epoch"][0] <= saved["epochs"]


def test_other_experiments_refuse_transfer_options(tmp_path):
    with pytest.raises(UserInputError, match="does not take --backbone"):
        run_experiment("pooling", str(tmp_path), quick=True, backbone="MobileNetV2")


def test_backbone_weights_need_a_backbone(tmp_path):
    with pytest.raises(UserInputError, match="needs a backbone"):
        transfer.run(str(tmp_path), quick=True, backbone_weights="random")


def test_cli_unknown_backbone_is_one_line_error(tmp_path, capsys):
    from keras_convnets.cli import main

    argv = ["experiment", "transfer", "--quick", "--out", str(tmp_path)]
    assert main([*argv, "--backbone", "NoNet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keras-convnets experiment: error")
    assert "keras.applications" in lines[0] and "NoNet" in lines[0]


def test_offline_imagenet_weights_is_a_clear_error(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(UserInputError, match="--backbone-weights random"):
        transfer._applications_backbone("MobileNetV3Small", "imagenet", (28, 28, 1), 32)


def test_random_backbone_takes_grey_images():
    model = transfer._applications_backbone(
        "MobileNetV3Small", "random", (28, 28, 1), 32
    )
    features = model(np.zeros((2, 28, 28, 1), np.float32))
    assert features.shape[0] == 2 and len(features.shape) == 2
    assert np.all(np.isfinite(features))


@pytest.mark.slow
def test_quick_run_with_random_backbone(tmp_path, small_fashion_dir):
    saved = transfer.run(
        str(tmp_path),
        quick=True,
        data_dir=small_fashion_dir,
        backbone="MobileNetV3Small",
        backbone_weights="random",
    )
    assert saved["backbone"] == "MobileNetV3Small" and saved["pretrain"] is None
    assert saved["backbone_weights"] == "random"
    assert (tmp_path / "transfer" / "transfer.png").exists()


def test_finetune_unfreezes_all_but_batch_norm():
    # Keras 3 runs nested models in the outer training mode, so fine-tuning
    # must freeze BN explicitly or small target batches overwrite its statistics.
    import keras

    from keras_convnets import get_model

    net = get_model("simple_cnn", (28, 28, 1), 5, stackwise_num_filters=(8, 16))
    model = transfer._with_head(transfer._zoo_features(net), 5, frozen=True)
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {
        "top_dense",
        "predictions",
    }
    transfer._finetune(model)
    trainable = {w.path for w in model.trainable_weights}
    assert "stage1_conv1/kernel" in trainable and "top_dense/kernel" in trainable
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert not layer.trainable


# Zoo backbones: the zoo models with a keras.applications twin.


def test_zoo_backbone_takes_grey_images_and_pools():
    model = transfer._applications_backbone("mobilenet", "random", (28, 28, 1), 32)
    features = model(np.zeros((2, 28, 28, 1), np.float32))
    assert features.shape == (2, 1024) and np.all(np.isfinite(features))
    assert model.get_layer("resize").output.shape == (None, 32, 32, 1)


def test_zoo_backbone_imagenet_features_are_the_twins(tmp_path, monkeypatch):
    import keras

    from keras_convnets.models.pretrained import build_twin

    twin = build_twin("mobilenet", (32, 32, 3), include_top=False, pooling="avg")
    rng = np.random.default_rng(1)
    for layer in twin.layers:  # BN offsets, so the features are not ~0
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([gamma, rng.normal(0, 0.2, beta.shape), mean, variance])
    path = str(tmp_path / "mobilenet_notop.weights.h5")
    twin.save_weights(path)
    names = []

    def get_file(fname, origin, cache_subdir, file_hash):
        names.append(fname)
        return path

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    model = transfer._applications_backbone("mobilenet", "imagenet", (32, 32, 1), 32)
    assert names == ["mobilenet_1_0_224_tf_no_top.h5"]  # the backbone-only file
    grey = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 1)).astype("float32")
    expected = twin(np.repeat(grey, 3, axis=-1) * 2.0 - 1.0)
    # training=False: Keras 3 runs a model nested behind a Resizing layer in
    # training mode when called with training=None (batch norm would update).
    got = np.asarray(model(grey, training=False))
    assert np.ptp(np.asarray(expected)) > 1e-2  # the comparison can fail
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_offline_zoo_backbone_is_a_clear_error(monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(UserInputError, match="--backbone-weights random") as info:
        transfer._applications_backbone("resnet50_v2", "imagenet", (28, 28, 1), 32)
    assert str(info.value).startswith("resnet50_v2: could not download")
    assert "\n" not in str(info.value)


def test_run_accepts_zoo_backbone_names(tmp_path):
    transfer.check_backbone("resnet50_v2")
    with pytest.raises(UserInputError, match="nor a zoo model") as info:
        transfer.check_backbone("resnet18")
    assert "resnet50_v2" in str(info.value)
