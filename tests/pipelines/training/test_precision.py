"""The compute type a config.mixed_precision setting resolves to, per machine."""

import pytest

from data_prep.errors import ConfigError
from pipelines.training.precision import compute_dtype, cpu_flags


@pytest.mark.parametrize(
    "setting, gpus, flags, expected",
    [
        ("", [], {"avx512_bf16"}, "float32"),
        (False, [], set(), "float32"),
        (True, [], set(), "float16"),  # configs written before the setting took names
        ("float16", [], set(), "float16"),
        ("bfloat16", [], set(), "bfloat16"),  # asked for, even where it is emulated
        ("auto", [], {"avx512f", "avx512_bf16"}, "bfloat16"),
        ("auto", [], {"amx_bf16"}, "bfloat16"),
        ("auto", [], {"avx512f", "avx2"}, "float32"),
        ("auto", [(9, 0)], set(), "bfloat16"),
        ("auto", [(8, 0), (7, 5)], {"avx512_bf16"}, "float16"),  # the oldest GPU decides
    ],
)
def test_a_setting_resolves_to_a_compute_type(setting, gpus, flags, expected):
    assert compute_dtype(setting, gpus=gpus, flags=flags) == expected


def test_an_unknown_setting_names_the_choices():
    with pytest.raises(ConfigError, match="'bf16'.*'bfloat16'"):
        compute_dtype("bf16", gpus=[], flags=set())


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\nbogomips\t: 1\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "absent") == set()
