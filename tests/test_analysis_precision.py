"""Every analysis tool on fp32, mixed bf16 and mixed fp16 models (issue 16 §4).

`keras-convnets train` defaults to bf16; the analysis tools mix their own
float32 tensors with the model's and must compute in float32 whatever
precision the model was trained in. Each tool is run on the mixed-precision
model as it comes (with its TTA wrapper, as the default recipe saves it) and
compared with the same weights in a float32 model.
"""

from __future__ import annotations

import dataclasses
import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import cli_in_process, quick_config
from keras_convnets.analysis import (
    activation_maximization,
    feature_maps,
    float32_model,
    grad_cam,
    layer_filters,
    max_pool_focus,
    report,
    saliency_map,
    style_transfer,
    top_patches,
)
from keras_convnets.analysis._common import write_image
from keras_convnets.models.tta import unwrap_tta, with_tta

LOW = ("bf16", "fp16")
_INFO = types.SimpleNamespace(image_shape=(28, 28, 1), num_classes=10)


def _build(precision):
    """simple_cnn_tiny as `train` builds it at `precision`, TTA-wrapped."""
    from keras_convnets.training.config import quick
    from keras_convnets.training.train import build_model

    keras.utils.set_random_seed(0)
    config = dataclasses.replace(quick(), precision=precision)
    return with_tta(build_model(config, _INFO), "flip")


@pytest.fixture(scope="module")
def models():
    """`{precision: TTA model}`, all three with the same weights."""
    built = {p: _build(p) for p in ("fp32", *LOW)}
    for p in LOW:
        built[p].set_weights(built["fp32"].get_weights())
    return built


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def _policies(model):
    return {layer.dtype_policy.name for layer in _layers(model)}


@pytest.mark.parametrize("precision", LOW)
def test_float32_model_is_an_exact_float32_copy(models, images, precision):
    model = models[precision]
    assert f"mixed_{'bfloat16' if precision == 'bf16' else 'float16'}" in (
        _policies(model)
    )
    copy = float32_model(model)
    assert copy is not model and _policies(copy) == {"float32"}
    assert _policies(model) != {"float32"}  # the original is untouched
    assert copy.name == model.name
    assert [w.path for w in copy.weights] == [w.path for w in model.weights]
    for a, b in zip(copy.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The TTA wrapper survives: its classifier is found inside the copy too.
    inner = unwrap_tta(copy)
    assert inner is not copy and _policies(inner) == {"float32"}
    # Same function as the float32 model with these weights, to float32 rounding.
    np.testing.assert_allclose(copy(images), models["fp32"](images), atol=1e-6)
    np.testing.assert_allclose(copy(images), model(images), atol=2e-2)


def test_float32_model_keeps_a_float32_model(models):
    assert float32_model(models["fp32"]) is models["fp32"]


def _every_tool(model, images):
    """What each tool returns for the classifier inside `model`."""
    model = unwrap_tta(model)
    layer = "stage2_conv1_relu"
    patches = top_patches(model, "stage2_conv1", 1, images, k=2)
    return {
        "filters": layer_filters(model),
        "feature-maps": feature_maps(model, layer, images),
        "pool-focus": max_pool_focus(model, "stage1_pool", images),
        "top-patches": np.float32([p["activation"] for p in patches]),
        "top-patch boxes": np.float32([p["box"] for p in patches]),
        "saliency": saliency_map(model, images),
        "grad-cam": grad_cam(model, layer, images),
        "activation-max units": activation_maximization(
            model, "stage2_conv1", units=[0, 3], steps=2
        ),
        "activation-max class": activation_maximization(model, class_index=2, steps=2),
    }


@pytest.fixture(scope="module")
def fp32_results(models, images):
    return _every_tool(models["fp32"], images)


@pytest.mark.parametrize("precision", LOW)
def test_every_tool_computes_in_float32(models, images, fp32_results, precision):
    """Each tool on the mixed model gives the float32 model's numbers, in float32
    (bfloat16 activations would differ from them by about 1e-2)."""
    results = _every_tool(models[precision], images)
    for tool, want in fp32_results.items():
        got = results[tool]
        parts = zip(got, want) if isinstance(got, tuple) else [(got, want)]
        for got_part, want_part in parts:
            got_part = np.asarray(got_part)
            if got_part.dtype.kind == "f":
                assert got_part.dtype == np.float32, tool
                assert np.isfinite(got_part).all(), tool
            np.testing.assert_allclose(
                got_part, want_part, rtol=1e-4, atol=1e-5, err_msg=tool
            )


@pytest.fixture(scope="module")
def fp32_stylized(models, images):
    return style_transfer(models["fp32"], images[0], images[1], steps=3, size=20)


@pytest.mark.parametrize("precision", LOW)
def test_style_transfer_on_any_precision(models, images, fp32_stylized, precision):
    """The TypeError the user hit (`AddV2` float32 vs bfloat16), TTA included."""
    image, history = style_transfer(
        models[precision], images[0], images[1], steps=3, size=20
    )
    want, want_history = fp32_stylized
    assert image.dtype == np.float32 and image.shape == (20, 20, 1)
    assert np.isfinite(history["total"]).all()
    np.testing.assert_allclose(image, want, atol=1e-4)
    np.testing.assert_allclose(history["total"], want_history["total"], rtol=1e-3)


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory, small_fashion_dir):
    """A run trained like the default recipe: bf16, flip TTA (1 short epoch)."""
    from keras_convnets.training.train import train_and_evaluate

    workdir = tmp_path_factory.mktemp("precision_runs")
    config = quick_config(
        workdir,
        small_fashion_dir,
        run_name="bf16",
        precision="bf16",
        tta="flip",
        epochs=1,
        train_fraction=0.1,
        tensorboard_images=0,
    )
    train_and_evaluate(config, verbose=0)
    return str(workdir / "bf16")


@pytest.mark.parametrize("what", report.WHATS)
def test_visualize_every_what_on_a_bf16_run(
    bf16_run, small_fashion_dir, tmp_path, what
):
    result = report.visualize(
        bf16_run,
        what,
        str(tmp_path),
        data_dir=small_fashion_dir,
        num_images=2,
        k=2,
        max_images=16,
        steps=2,
    )
    image = tf.io.decode_png(tf.io.read_file(result["png"])).numpy()
    assert image.shape[0] > 100 and image.std() > 0
    assert all("nan" not in line for line in result["summary"])


def test_stylize_cli_on_a_bf16_run(bf16_run, tmp_path):
    rng = np.random.default_rng(0)
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    write_image(str(content), rng.random((28, 28, 1)))
    write_image(str(style), rng.random((28, 28, 1)))
    out = tmp_path / "out.png"
    result = cli_in_process(
        "stylize", content, style, "--backbone", bf16_run, "--steps", "3",
        "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Wrote" in result.stdout and "nan" not in result.stdout
    assert os.path.isfile(out)
    assert tf.io.decode_png(tf.io.read_file(str(out))).numpy().shape == (28, 28, 1)
