"""benchmarks/_machine.py: every benchmark's record of the CPU it ran on."""

from benchmarks._machine import CPU_FLAGS, cpu_info

ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx fma avx2 bmi2

processor\t: 1
model name\t: not read: the first block is enough
"""

SAPPHIRE_RAPIDS = """vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8481C
flags\t\t: avx2 fma avx512f avx512_bf16 avx512_vnni amx_bf16 amx_tile amx_int8
"""


def test_cpu_info_reads_model_and_the_flags_that_decide_precision(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(ZEN3)
    info = cpu_info(str(path))
    assert info["model_name"] == "AMD EPYC 7B13"
    assert (info["vendor"], info["family"], info["model"]) == ("AuthenticAMD", 25, 1)
    assert set(info["flags"]) == set(CPU_FLAGS)
    assert info["flags"]["avx2"] and info["flags"]["fma"]
    assert not info["flags"]["avx512f"] and not info["flags"]["amx_tile"]
    assert info["usable_cpus"] >= 1
    path.write_text(SAPPHIRE_RAPIDS)
    flags = cpu_info(str(path))["flags"]
    assert flags["amx_bf16"] and flags["avx512_bf16"] and not flags["avx_vnni"]


def test_cpu_info_without_proc_cpuinfo(tmp_path):
    info = cpu_info(str(tmp_path / "missing"))
    assert info["flags"] is None and info["logical_cpus"] >= 1
