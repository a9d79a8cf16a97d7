"""The machine a benchmark ran on, for its JSON output (every script uses this).

A figure without its CPU cannot be compared: the fast recipe's bf16 was ~5x
fp32 per convolution on a Xeon with AMX and is slower than fp32 on a CPU with
AVX2 only (issue 19). So every benchmark records the CPU model, family/model
numbers, the vector and matrix flags that decide bf16 and fp32 speed, the
cores it may use, and the load while it ran.
"""

from __future__ import annotations

import os
import platform

# Flags that decide which precision is fast: AMX tiles (Sapphire Rapids+),
# AVX-512 with bf16 dot products (Zen 4+, Cooper Lake+), AVX-512, AVX2, FMA,
# AVX-VNNI.
CPU_FLAGS = (
    "amx_bf16",
    "amx_tile",
    "amx_int8",
    "avx512_bf16",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx2",
    "fma",
)


def cpu_info(cpuinfo_path: str = "/proc/cpuinfo") -> dict:
    """CPU model, family/model, the flags in `CPU_FLAGS` it has, core counts.

    Args:
        cpuinfo_path: str. Linux's `/proc/cpuinfo` (tests pass a copy).
            Elsewhere only `platform.processor()` and the core count.
    """
    fields = {}
    try:
        with open(cpuinfo_path) as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "model_name": fields.get("model name") or platform.processor() or None,
        "vendor": fields.get("vendor_id"),
        "family": _int(fields.get("cpu family")),
        "model": _int(fields.get("model")),
        "flags": {flag: flag in flags for flag in CPU_FLAGS} if flags else None,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "machine": platform.machine(),
    }


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def machine_info() -> dict:
    """`cpu_info()` plus platform, library versions, GPUs and the load average."""
    import keras
    import tensorflow as tf

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": cpu_info(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "load_average": load,
    }
