"""Loading saved models: archive bombs, corrupt archives, run.json, image bombs."""

import json
import struct
import zipfile
import zlib

import keras
import pytest

from conftest import assert_one_line_error, cli_in_process
from keras_convnets.errors import UserInputError
from keras_convnets.inference import check_image_size, load_model, predict
from keras_convnets.training import safety
from keras_convnets.training.safety import check_model_archive


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "base.keras"
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(2, activation="softmax", name="dense")(x)
    keras.Model(inputs, outputs).save(path)
    return path


def _rewrite(base, out, replace=None, extra=None, compress=zipfile.ZIP_STORED):
    """Copies a .keras archive with replaced and/or extra members."""
    replace = replace or {}
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, replace.get(name, src.read(name)), compress)
        for name, data in (extra or {}).items():
            dst.writestr(name, data, zipfile.ZIP_DEFLATED)
    return out


def _patch_central(path, member, offset, value):
    """Overwrites bytes of `member`'s central-directory entry."""
    data = bytearray(path.read_bytes())
    start = 0
    while True:
        start = data.index(b"PK\x01\x02", start)
        name_length = struct.unpack("<H", data[start + 28 : start + 30])[0]
        if data[start + 46 : start + 46 + name_length] == member.encode():
            break
        start += 4
    data[start + offset : start + offset + len(value)] = value
    path.write_bytes(bytes(data))
    return path


# ------------------------------------------------------------------- bombs


def test_config_json_bomb_is_refused_from_its_declared_size(
    tmp_path, base_model, monkeypatch
):
    # 4 MiB of spaces deflate to about 4 KB; the same holds for 1 GiB at the
    # real bound. Nothing may be inflated to find out.
    monkeypatch.setattr(safety, "MAX_CONFIG_BYTES", 1024 * 1024)
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", b" " * (4 << 20), zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 64 * 1024

    def no_read(*args):
        raise AssertionError("a member was read")

    monkeypatch.setattr(safety, "_read_member", no_read)
    with pytest.raises(UserInputError, match="config.json declares 4194304 bytes"):
        check_model_archive(str(path))


def test_weights_bomb_is_refused_before_any_weight_is_read(
    tmp_path, base_model, monkeypatch
):
    # 64 MiB of zeros (64 KB deflated) for a model of 258 parameters.
    path = tmp_path / "weights-bomb.keras"
    with zipfile.ZipFile(base_model) as src, zipfile.ZipFile(path, "w") as dst:
        for name in ("config.json", "metadata.json"):
            dst.writestr(name, src.read(name))
        dst.writestr("model.weights.h5", bytes(64 << 20), zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 1 << 20
    monkeypatch.setattr(
        keras.Model, "load_weights", lambda *a, **k: pytest.fail("weights were read")
    )
    with pytest.raises(UserInputError, match=r"model.weights.h5 declares 67108864"):
        load_model(str(path))


def test_weights_bomb_gives_one_line_in_the_cli(tmp_path, base_model):
    path = tmp_path / "weights-bomb.keras"
    with zipfile.ZipFile(base_model) as src, zipfile.ZipFile(path, "w") as dst:
        for name in ("config.json", "metadata.json"):
            dst.writestr(name, src.read(name))
        dst.writestr("model.weights.h5", bytes(64 << 20), zipfile.ZIP_DEFLATED)
    result = cli_in_process("evaluate", path, "--dataset", "fashion_mnist")
    assert_one_line_error(result, "decompression bomb", "--unsafe")


def test_assets_are_bounded_each_and_together(tmp_path, base_model):
    big = _rewrite(base_model, tmp_path / "a.keras", extra={"assets/x": bytes(2 << 20)})
    with pytest.raises(UserInputError, match="asset limit"):
        check_model_archive(str(big))
    many = {f"assets/{i}": bytes(1 << 20) for i in range(5)}
    total = _rewrite(base_model, tmp_path / "b.keras", extra=many)
    with pytest.raises(UserInputError, match="limit on all assets"):
        check_model_archive(str(total))


def test_real_weights_are_well_inside_the_limit(base_model):
    model, _ = load_model(str(base_model))
    with zipfile.ZipFile(base_model) as archive:
        size = archive.getinfo("model.weights.h5").file_size
    limit = safety.weights_limit(model.count_params(), len(model.weights) + 4)
    assert size < limit < 100 * size


# --------------------------------------------------------- corrupt archives


def test_bad_crc_in_config_is_one_line(tmp_path, base_model):
    path = _patch_central(
        _rewrite(base_model, tmp_path / "crc.keras"), "config.json", 16, b"\0\0\0\0"
    )
    with pytest.raises(UserInputError, match="corrupt .keras archive.*CRC"):
        load_model(str(path))


def test_bad_crc_in_weights_is_one_line(tmp_path, base_model):
    path = _patch_central(
        _rewrite(base_model, tmp_path / "crc.keras"),
        "model.weights.h5",
        16,
        b"\0\0\0\0",
    )
    with pytest.raises(UserInputError, match="cannot load model.*CRC") as info:
        load_model(str(path))
    assert "\n" not in str(info.value)


def test_lying_declared_size_stops_at_it(tmp_path, base_model):
    # config.json declares 10 bytes but holds more: reading stops at 10, and
    # the CRC of those 10 does not match.
    path = _patch_central(
        _rewrite(base_model, tmp_path / "lie.keras"),
        "config.json",
        24,
        struct.pack("<I", 10),
    )
    with pytest.raises(UserInputError, match="corrupt"):
        check_model_archive(str(path))


@pytest.mark.parametrize(
    "offset, value, fragment",
    [
        (8, struct.pack("<H", 1), "encrypted"),
        (10, struct.pack("<H", 12), "compression method 12"),  # bzip2
        (10, struct.pack("<H", 99), "compression method 99"),  # AES
    ],
)
def test_encrypted_and_unknown_compression_are_refused(
    tmp_path, base_model, offset, value, fragment
):
    path = _patch_central(
        _rewrite(base_model, tmp_path / "x.keras"), "config.json", offset, value
    )
    with pytest.raises(UserInputError, match=fragment):
        load_model(str(path))


def test_truncated_archive_is_one_line(tmp_path, base_model):
    data = base_model.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        path = tmp_path / f"cut{cut}.keras"
        path.write_bytes(data[:cut])
        with pytest.raises(UserInputError, match="not a .keras|corrupt"):
            load_model(str(path))


@pytest.mark.parametrize(
    "config, fragment",
    [
        (b"[" * 200_000 + b"]" * 200_000, "nests too deeply"),
        (b'{"class_name": "\xff\xfe"}', "not UTF-8"),
        (b"[1, 2]", "not a JSON object"),
        (b"{", "corrupt config.json"),
    ],
)
def test_unparsable_configs_are_one_line(tmp_path, base_model, config, fragment):
    path = _rewrite(base_model, tmp_path / "c.keras", {"config.json": config})
    with pytest.raises(UserInputError, match=fragment):
        load_model(str(path))


# ----------------------------------------------------------------- run.json


def _run_dir(tmp_path, base_model, record):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(base_model.read_bytes())
    (run / "run.json").write_text(json.dumps(record))
    return run


def _record():
    return {
        "config": {"dataset": "fashion_mnist", "seed": 0, "validation_fraction": 0.1},
        "dataset": {"class_names": ["a", "b"]},
    }


def test_a_minimal_run_json_loads(tmp_path, base_model):
    _, record = load_model(str(_run_dir(tmp_path, base_model, _record())))
    assert record["dataset"]["class_names"] == ["a", "b"]


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda r: [r], "the record is not a JSON object"),
        (lambda r: (r.pop("config"), r)[1], "config is missing"),
        (lambda r: r.update(dataset=[]) or r, "dataset is missing or not an object"),
        (lambda r: (r["config"].pop("seed"), r)[1], "seed is missing"),
        (lambda r: r["config"].update(seed="0") or r, "seed must be"),
        (lambda r: r["config"].update(seed=-1) or r, "seed must be"),
        (lambda r: r["config"].update(validation_fraction=None) or r, "validation"),
        (lambda r: r["config"].update(image_size=[0, "a"]) or r, "image_size"),
        (lambda r: r["config"].update(data_dir=3) or r, "data_dir"),
        (lambda r: r["config"].update(dataset=None) or r, "dataset must be"),
        (lambda r: r["dataset"].update(class_names="ab") or r, "class_names"),
        (lambda r: r["dataset"].update(class_names=[1, 2]) or r, "class_names"),
        (lambda r: r["dataset"].update(class_names=["a"]) or r, "has 1 names"),
    ],
)
def test_malformed_run_json_is_one_line_naming_the_field(
    tmp_path, base_model, mutate, fragment
):
    run = _run_dir(tmp_path, base_model, mutate(_record()))
    with pytest.raises(UserInputError, match="run.json") as info:
        load_model(str(run))
    assert fragment in str(info.value)


def test_malformed_run_json_reaches_no_consumer(tmp_path, base_model):
    from keras_convnets.inference import evaluate

    record = _record()
    del record["dataset"]["class_names"]
    run = _run_dir(tmp_path, base_model, record)
    with pytest.raises(UserInputError, match="run.json.*class_names is missing"):
        evaluate(str(run))


# ------------------------------------------------------------- image bombs


def _png_header(width, height):
    """A PNG of a few bytes declaring `width` x `height` grayscale pixels."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_png_bomb_is_called_too_large(tmp_path, base_model):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(100_000, 100_000))
    with pytest.raises(UserInputError, match=r"image too large: 100000x100000 pixels"):
        predict(str(base_model), [str(bomb)])
    with pytest.raises(UserInputError, match="image too large: 300x200"):
        bomb.write_bytes(_png_header(300, 200))
        check_image_size(str(bomb), max_pixels=300 * 199)
    check_image_size(str(bomb), max_pixels=300 * 200)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(UserInputError, match="not a PNG"):
        check_image_size(str(junk))
