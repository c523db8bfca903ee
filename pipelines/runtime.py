"""Process-wide settings that every `lipseq` verb applies before TensorFlow loads."""

from __future__ import annotations

import ctypes
import os
import sys

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
# The CPU features with which TensorFlow turns oneDNN on by itself (it leaves it off elsewhere).
ONEDNN_DEFAULT_CPU_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
HEAP_MMAP_THRESHOLD = 128 * 1024


def keep_large_buffers_off_the_heap() -> bool:
    """Serves allocations of 128 KiB and more from mmap, so they go back to the system on free.

    glibc raises its mmap threshold each time a large mmapped block is freed, after which
    ~1 MiB video records and decoded clips come from the heap and fragment it: the video input
    pipeline's peak then grew by 100-180 MiB an epoch (1.08 -> 1.53 GiB over four GRID epochs);
    with the threshold fixed it stays at 1.19 GiB, at the same training speed. Returns False
    where this is not glibc on Linux, or MALLOC_MMAP_THRESHOLD_ already says what to do.
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def use_onednn_kernels() -> bool:
    """Has TensorFlow load its oneDNN CPU kernels, unless the environment already says.

    TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX; elsewhere
    (AVX2-only hosts of the same VM kind) it runs its Eigen kernels, with which the GRID
    recipe's training step took 4.06 s against 1.51 s with oneDNN on a 2-core AVX2 EPYC, the
    3D convolutions most of the gap (bench/results/onednn.json). It only counts before
    TensorFlow is imported; returns whether this process's TensorFlow will see the setting it
    made.
    """
    if ONEDNN_ENV in os.environ:
        return False
    os.environ[ONEDNN_ENV] = "1"
    return "tensorflow" not in sys.modules


def onednn_in_use() -> bool | None:
    """Whether this process's TensorFlow runs oneDNN kernels, by its own report (None where
    it gives none). Imports TensorFlow, so it settles the choice use_onednn_kernels makes."""
    try:
        # Late: importing TensorFlow settles its kernel choice, so only this asks for it.
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    is_enabled = getattr(_pywrap_util_port, "IsMklEnabled", None)
    return None if is_enabled is None else bool(is_enabled())
