"""`--precision auto`: the choice from injected timings, the record, resume.

No test here asserts anything about speed: the timings that decide are
injected, and the one real measurement only has to produce numbers.
"""

import json
import types

import keras
import pytest

from conftest import quick_config as _config
from keras_convnets.inference import load_model
from keras_convnets.training import precision as kc_precision
from keras_convnets.training import train as train_module
from keras_convnets.training.train import build_model, train_and_evaluate

TINY_INFO = types.SimpleNamespace(image_shape=(28, 28, 1), num_classes=10)


# ----------------------------------------------------------------------------
# The decision.


@pytest.mark.parametrize(
    "ms, expected",
    [
        ({"fp32": 80.0, "bf16": 16.0}, "bf16"),  # AMX: bf16 5x faster
        ({"fp32": 80.0, "bf16": 72.0}, "bf16"),  # exactly the margin
        ({"fp32": 80.0, "bf16": 75.0}, "fp32"),  # within noise: fp32
        ({"fp32": 80.0, "bf16": 400.0}, "fp32"),  # AVX2 only: bf16 emulated
    ],
)
def test_auto_keeps_the_faster_with_a_margin_for_bf16(ms, expected):
    assert kc_precision.choose(ms) == expected


@pytest.mark.parametrize(
    "gpus, expected",
    [
        ([], None),
        ([("/gpu:0", (8, 0))], "bf16"),
        ([("/gpu:0", (9, 0)), ("/gpu:1", (8, 6))], "bf16"),
        ([("/gpu:0", (7, 5))], "fp16"),
        ([("/gpu:0", (9, 0)), ("/gpu:1", (7, 0))], "fp16"),  # all must have bf16
        ([("/gpu:0", None)], "fp16"),
    ],
)
def test_gpu_rule(gpus, expected):
    assert kc_precision.gpu_precision(gpus) == expected


class _FakeModel:
    def __init__(self, log, precision):
        self.log, self.precision = log, precision

    def train_on_batch(self, x, y):
        self.log.append(self.precision)


def test_measure_warms_up_then_times_the_median_within_a_budget():
    log, built = [], []
    ticks = iter(range(0, 10_000))

    def clock():  # every step takes 1 "second" on this clock
        return float(next(ticks))

    def build(precision):
        built.append(precision)
        return _FakeModel(log, precision)

    ms = kc_precision.measure_step_ms(
        build, ("x", "y"), warmup_steps=2, timed_steps=5, budget_s=3.0, clock=clock
    )
    assert built == ["fp32", "bf16"]
    # 2 warm-up steps, then timed steps until 3 s are used: 3 of them.
    assert log == ["fp32"] * 5 + ["bf16"] * 5
    assert ms == {"fp32": 1000.0, "bf16": 1000.0}


def test_measure_stops_timing_a_precision_that_cannot_win():
    log = []
    step = {"fp32": 1.0, "bf16": 2.5}  # seconds per step on the fake clock
    now = [0.0]

    class Timed(_FakeModel):
        def train_on_batch(self, x, y):
            super().train_on_batch(x, y)
            now[0] += step[self.precision]

    ms = kc_precision.measure_step_ms(
        lambda p: Timed(log, p),
        ("x", "y"),
        warmup_steps=1,
        timed_steps=5,
        budget_s=30.0,
        clock=lambda: now[0],
    )
    # fp32: 1 warm-up + 5 timed; bf16: 1 warm-up + 1 timed step (2.5x fp32).
    assert log == ["fp32"] * 6 + ["bf16"] * 2
    assert ms == {"fp32": 1000.0, "bf16": 2500.0}


def _no_measure():
    raise AssertionError("measured although it must not")


def test_a_given_precision_is_never_measured(tmp_path):
    record = kc_precision.resolve("bf16", str(tmp_path), False, _no_measure, 128)
    assert record == {"requested": "bf16", "precision": "bf16", "how": "given"}
    assert json.loads((tmp_path / "precision.json").read_text()) == record


def test_auto_on_a_cpu_measures_and_records_both_timings(tmp_path):
    record = kc_precision.resolve(
        "auto",
        str(tmp_path),
        False,
        lambda: {"fp32": 90.0, "bf16": 300.0},
        batch_size=128,
        gpus=[],
        cpu_bf16=True,
    )
    assert record["precision"] == "fp32" and record["how"] == "measured"
    assert record["ms_per_step"] == {"fp32": 90.0, "bf16": 300.0}
    assert record["batch_size"] == 128
    assert json.loads((tmp_path / "precision.json").read_text()) == record
    line = kc_precision.describe(record)
    assert "fp32 90.0" in line and "bf16 300.0" in line and "batch 128" in line


def test_a_resumed_auto_run_reuses_its_record(tmp_path):
    kc_precision.resolve(
        "auto",
        str(tmp_path),
        False,
        lambda: {"fp32": 90.0, "bf16": 30.0},
        64,
        gpus=[],
        cpu_bf16=True,
    )
    # The machine now favours fp32, or has a GPU: the run keeps bf16.
    for gpus in ([], [("/gpu:0", (7, 0))]):
        record = kc_precision.resolve(
            "auto", str(tmp_path), True, _no_measure, 64, gpus=gpus
        )
        assert record["precision"] == "bf16" and record["how"] == "recorded"
        assert record["ms_per_step"] == {"fp32": 90.0, "bf16": 30.0}
    # A new (not resumed) run in a fresh folder measures again.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    record = kc_precision.resolve(
        "auto",
        str(fresh),
        True,
        lambda: {"fp32": 10.0, "bf16": 30.0},
        64,
        gpus=[],
        cpu_bf16=True,
    )
    assert record["precision"] == "fp32" and record["how"] == "measured"


def test_auto_times_nothing_on_gpus_and_under_multi_worker(tmp_path):
    record = kc_precision.resolve(
        "auto", str(tmp_path), False, _no_measure, 64, gpus=[("/gpu:0", (9, 0))]
    )
    assert (record["precision"], record["how"]) == ("bf16", "gpu")
    record = kc_precision.resolve(
        "auto", str(tmp_path), False, _no_measure, 64, multi_worker=True, gpus=[]
    )
    assert (record["precision"], record["how"]) == ("fp32", "multi-worker")


def test_auto_keeps_fp32_untimed_on_a_cpu_without_bf16_hardware(tmp_path):
    record = kc_precision.resolve(
        "auto", str(tmp_path), False, _no_measure, 64, gpus=[], cpu_bf16=False
    )
    assert record == {"requested": "auto", "precision": "fp32", "how": "cpu-flags"}
    assert "no bf16 hardware" in kc_precision.describe(record)
    # A GPU still decides first.
    record = kc_precision.resolve(
        "auto",
        str(tmp_path),
        False,
        _no_measure,
        64,
        gpus=[("g", (8, 0))],
        cpu_bf16=False,
    )
    assert record["precision"] == "bf16"


@pytest.mark.parametrize(
    "text, expected",
    [
        # Zen 3 (this project's AVX2 machine): no bf16 hardware.
        ("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\n"
         "flags\t\t: avx512_bf16\n", False),
        ("processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16\n", True),  # Zen 4
        ("flags\t\t: avx2 avx512f amx_bf16 amx_tile\n", True),  # Sapphire Rapids
        ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", True),  # Arm
        ("processor\t: 0\nFeatures\t: fp asimd\n", False),
        ("model name\t: something\n", None),  # no flag list: measure
    ],
)  # fmt: skip
def test_cpu_bf16_support_reads_the_first_processor(tmp_path, text, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    assert kc_precision.cpu_bf16_support(str(path)) is expected
    assert kc_precision.cpu_bf16_support(str(tmp_path / "missing")) is None


def test_fp16_trains_with_dynamic_loss_scaling(small_fashion_dir, tmp_path):
    """Keras wraps the optimizer only when the model's own policy is
    mixed_float16; the functional model here has the float32 policy."""
    config = _config(tmp_path, small_fashion_dir, precision="fp16")
    model = build_model(config, TINY_INFO)
    assert model.dtype_policy.name == "float32"  # why Keras would not wrap it
    train_module._compile_model(model, config, 10, False, "fp16")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    fp32 = build_model(config, TINY_INFO, "fp32")
    train_module._compile_model(fp32, config, 10, False, "fp32")
    assert not isinstance(fp32.optimizer, keras.optimizers.LossScaleOptimizer)


def test_a_real_measurement_gives_a_time_per_precision(small_fashion_dir, tmp_path):
    config = _config(tmp_path, small_fashion_dir, batch_size=8)
    x = keras.random.uniform((8, 28, 28, 1), seed=1)
    y = keras.ops.one_hot(keras.ops.arange(8) % 10, 10)

    def build(precision):
        model = build_model(config, TINY_INFO, precision)
        train_module._compile_model(model, config, 10, False, precision)
        return model

    ms = kc_precision.measure_step_ms(build, (x, y), warmup_steps=1, timed_steps=2)
    assert set(ms) == {"fp32", "bf16"} and all(v > 0 for v in ms.values())


# ----------------------------------------------------------------------------
# Runs.


def _inject(monkeypatch, ms):
    calls = []

    def fake(build, batch, *args, **kwargs):
        calls.append(tuple(batch[0].shape))
        return dict(ms)

    monkeypatch.setattr(kc_precision, "measure_step_ms", fake)
    # As on a CPU with bf16 hardware, whatever this machine has.
    monkeypatch.setattr(kc_precision, "cpu_bf16_support", lambda: True)
    return calls


def test_an_auto_run_trains_in_the_faster_precision_and_records_it(
    tmp_path, small_fashion_dir, monkeypatch
):
    calls = _inject(monkeypatch, {"fp32": 20.0, "bf16": 10.0})
    auto = _config(tmp_path / "a", small_fashion_dir, epochs=1, precision="auto")
    record = train_and_evaluate(auto, verbose=0)
    assert calls == [(64, 28, 28, 1)]  # a real batch of the run's size
    assert record["config"]["precision"] == "auto"
    assert record["precision"]["precision"] == "bf16"
    assert record["precision"]["ms_per_step"] == {"fp32": 20.0, "bf16": 10.0}
    saved = json.loads((tmp_path / "a" / "run" / "run.json").read_text())
    assert saved["precision"] == record["precision"]
    assert not (tmp_path / "a" / "run" / "precision.json").exists()  # in run.json
    model, _ = load_model(str(tmp_path / "a" / "run"))
    assert model.get_layer("stage1_conv1").compute_dtype == "bfloat16"
    assert model.output.dtype == "float32"
    # The same run as one given --precision bf16 (timing drew no randomness
    # from the run: the model is built again from the seed).
    given = _config(tmp_path / "g", small_fashion_dir, epochs=1, precision="bf16")
    forced = train_and_evaluate(given, verbose=0)
    assert forced["precision"]["how"] == "given"
    assert forced["history"] == record["history"]
    assert forced["test_accuracy"] == record["test_accuracy"]


class _Killed(Exception):
    pass


def test_a_resumed_auto_run_keeps_the_precision_it_started_in(
    tmp_path, small_fashion_dir, monkeypatch
):
    config = _config(tmp_path, small_fashion_dir, epochs=1, precision="auto")

    def killed(*args, **kwargs):
        raise _Killed

    with monkeypatch.context() as m:
        _inject(m, {"fp32": 20.0, "bf16": 10.0})
        m.setattr(train_module.io, "save_model_atomic", killed)
        with pytest.raises(_Killed):
            train_and_evaluate(config, verbose=0)
    # The machine now favours fp32; the resumed run must not measure at all.
    calls = _inject(monkeypatch, {"fp32": 10.0, "bf16": 20.0})
    record = train_and_evaluate(config, verbose=0)
    assert calls == [] and record["resumed"] is True
    assert record["precision"]["precision"] == "bf16"
    assert record["precision"]["how"] == "recorded"
    model, _ = load_model(str(tmp_path / "run"))
    assert model.get_layer("stage1_conv1").compute_dtype == "bfloat16"
