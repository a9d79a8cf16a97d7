"""`keras-convnets visualize` and `stylize` end to end on a small real run."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import assert_one_line_error, cli_in_process, run_cli
from keras_convnets.analysis import commands, report


def _read_png(path):
    assert os.path.isfile(path), path
    return tf.io.decode_png(tf.io.read_file(path)).numpy()


def test_whats_agree():
    assert commands.WHATS == report.WHATS


@pytest.mark.parametrize(
    "what, extra, name",
    [
        ("filters", [], "filters_stage1_conv1.png"),
        ("feature-maps", ["--layer", "stage1_conv1_relu"], None),
        ("top-patches", ["--layer", "stage2_conv1", "--unit", "3", "-k", "4"], None),
        (
            "activation-max",
            ["--layer", "stage2_conv1", "--unit", "0,5", "--steps", "5"],
            None,
        ),
        (
            "activation-max",
            ["--class", "Sneaker", "--steps", "5"],
            "activation-max_class7.png",
        ),
        ("saliency", ["--num-images", "2"], "saliency.png"),
        ("grad-cam", ["--class", "2"], "grad-cam_stage2_conv1_relu_class2.png"),
        ("pool-focus", [], "pool-focus_stage1_pool_unit0.png"),
    ],
)
def test_visualize_writes_a_png(run_dir, what, extra, name):
    from keras_convnets.cli import main

    # In-process (the subprocess path is covered below): one model load each.
    out = os.path.join(run_dir, "analysis")
    assert main(["visualize", run_dir, "--what", what, *extra]) == 0
    written = sorted(os.listdir(out))
    if name:
        assert name in written
    image = _read_png(
        os.path.join(out, name or [w for w in written if w.startswith(what)][0])
    )
    assert image.shape[0] > 150 and image.shape[1] > 150
    assert image.std() > 0  # not blank


def test_visualize_subprocess_images_and_tensorboard(run_dir, tmp_path):
    shoe = tmp_path / "shoe.png"
    tf.io.write_file(str(shoe), tf.io.encode_png(np.zeros((40, 30, 3), "uint8") + 200))
    result = run_cli(
        "visualize",
        run_dir,
        "--what",
        "saliency",
        "--images",
        shoe,
        "--out",
        tmp_path / "figs",
        "--tensorboard",
        check=True,
    )
    assert "shoe.png: class" in result.stdout
    assert _read_png(str(tmp_path / "figs" / "saliency.png")).shape[0] > 150
    logs = os.path.join(run_dir, "logs", "analysis")
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(logs))
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    events = EventAccumulator(logs, size_guidance={"tensors": 0})
    events.Reload()
    assert "saliency" in events.Tags()["tensors"]


def test_visualize_user_errors(run_dir, tmp_path, capsys):
    from keras_convnets.cli import main

    cases = [
        (["--what", "filters", "--layer", "nope"], "no layer 'nope'"),
        (
            ["--what", "top-patches", "--layer", "stage2_conv1", "--unit", "99"],
            "unit=99",
        ),
        (["--what", "grad-cam", "--class", "Hat"], "Unknown class 'Hat'"),
        (
            ["--what", "saliency", "--images", str(tmp_path / "none.png")],
            "Image not found",
        ),
        (
            ["--what", "saliency", "--images", str(tmp_path / "bomb.png")],
            "image too large: 100000x100000 pixels",
        ),
    ]
    from test_inference import _png_header

    (tmp_path / "bomb.png").write_bytes(_png_header(100_000, 100_000))
    for args, fragment in cases:
        assert main(["visualize", run_dir, *args]) == 2, args
        assert fragment in capsys.readouterr().err
    result = cli_in_process(
        "visualize", run_dir, "--what", "filters", "--layer", "nope"
    )
    assert_one_line_error(result, "keras-convnets visualize: error:", "no layer 'nope'")
    with pytest.raises(SystemExit) as exit_info:
        main(["visualize", run_dir, "--what", "colors"])
    assert exit_info.value.code == 2 and "--what" in capsys.readouterr().err
    assert main(["visualize", str(tmp_path / "missing"), "--what", "filters"]) == 2
    assert "not found" in capsys.readouterr().err


def test_visualize_and_stylize_take_unsafe(run_dir, tmp_path, capsys):
    """The refusal says "pass --unsafe": every command that loads a model has it."""
    from keras_convnets.cli import build_parser, main

    out = tmp_path / "out"
    assert (
        main(["visualize", run_dir, "--what", "filters", "--out", str(out), "--unsafe"])
        == 0
    )
    assert any(name.endswith(".png") for name in os.listdir(out))
    args = build_parser().parse_args(
        ["stylize", "--backbone", run_dir, "a.png", "b.png", "--unsafe"]
    )
    assert args.unsafe is True


def test_stylize_cli(run_dir, tmp_path, small_fashion_dir, capsys):
    from keras_convnets import load_dataset

    ds, _ = load_dataset(
        "fashion_mnist", "test", batch_size=2, data_dir=small_fashion_dir
    )
    images, _ = next(iter(ds))
    paths = []
    for i, image in enumerate(images.numpy()):
        path = tmp_path / f"in{i}.png"
        tf.io.write_file(str(path), tf.io.encode_png((image * 255).astype("uint8")))
        paths.append(path)
    out = tmp_path / "out.png"
    result = cli_in_process(
        "stylize",
        *paths,
        "--backbone",
        run_dir,
        "--steps",
        "20",
        "--size",
        "48",
        "--save-every",
        "10",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "step    20/20" in result.stdout and "Wrote" in result.stdout
    assert _read_png(str(out)).shape == (48, 48, 1)
    assert _read_png(str(tmp_path / "out_step10.png")).shape == (48, 48, 1)
    from keras_convnets.cli import main

    errors = [
        (["--out", str(tmp_path / "x.jpg")], ".png"),
        (["--style-layers", "dense"], "feature map"),
        (["--content-layer", "nope"], "no layer 'nope'"),
    ]
    for args, fragment in errors:
        code = main(["stylize", *map(str, paths), "--backbone", run_dir, *args])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and fragment in err[0], (args, err)
        assert err[0].startswith("keras-convnets stylize: error:")
    assert main(["stylize", str(paths[0]), str(tmp_path / "no.png")]) == 2
    assert "Image not found" in capsys.readouterr().err


def test_stylize_vgg19_offline_in_process(monkeypatch, tmp_path, capsys):
    from keras_convnets.cli import main
    from keras_convnets.data import datasets

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(datasets, "is_online", lambda *a, **k: False)
    image = tmp_path / "a.png"
    tf.io.write_file(str(image), tf.io.encode_png(np.zeros((8, 8, 3), "uint8")))
    code = main(["stylize", str(image), str(image), "--backbone", "vgg19"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("keras-convnets stylize: error: --backbone vgg19 needs")
