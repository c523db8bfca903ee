"""Which floating-point type a training step computes in (variables stay float32 throughout).

    config.mixed_precision = ""          float32
                             "float16"   float16 with a dynamic loss scale (GPUs; True means this)
                             "bfloat16"  bfloat16, float32's range, so no loss scale
                             "auto"      bfloat16 where the hardware multiplies it natively,
                                         else float32 (CPU) or float16 (older GPUs)

On a CPU with bfloat16 dot products (AVX-512 BF16 or AMX) oneDNN runs the GRID recipe's
training step 1.36x as fast in bfloat16 (bench/results/lipreading_precision.json); without
them the conversions cost more than they save, hence "auto".
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras
import tensorflow as tf

from data_prep.errors import ConfigError

SETTINGS = ("", "float16", "bfloat16", "auto")
KERAS_POLICIES = {"float32": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
CPU_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The instruction-set flags the CPU reports (empty where /proc/cpuinfo is absent)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def gpu_capabilities() -> list[tuple[int, int]]:
    """Compute capability (major, minor) of each visible GPU."""
    capabilities = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capabilities.append(tuple(details.get("compute_capability", (0, 0))))
    return capabilities


def compute_dtype(setting, gpus=None, flags=None) -> str:
    """float32, float16 or bfloat16 for a config.mixed_precision setting (bools: old configs).

    gpus and flags default to this machine's (see gpu_capabilities and cpu_flags)."""
    if setting is True:
        setting = "float16"
    if setting is False or setting is None:
        setting = ""
    if setting not in SETTINGS:
        raise ConfigError(
            f"config.mixed_precision={setting!r}; expected one of "
            + ", ".join(repr(s) for s in SETTINGS)
        )
    if setting != "auto":
        return setting or "float32"
    gpus = gpu_capabilities() if gpus is None else gpus
    if gpus:
        # Ampere (8.0) and later multiply bfloat16 at float16's rate.
        return "bfloat16" if min(gpus) >= (8, 0) else "float16"
    flags = cpu_flags() if flags is None else flags
    return "bfloat16" if flags & set(CPU_BFLOAT16_FLAGS) else "float32"


@contextlib.contextmanager
def keras_policy(name: str):
    """Keras layers built inside compute as the dtype policy `name` says (e.g. mixed_bfloat16,
    variables float32); the previous global policy comes back on exit."""
    saved = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(saved)
