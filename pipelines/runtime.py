"""Process-wide settings that every `lipseq` verb applies before TensorFlow loads."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
# The CPU features with which TensorFlow turns oneDNN on by itself (it leaves it off elsewhere).
ONEDNN_DEFAULT_CPU_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
HEAP_MMAP_THRESHOLD = 128 * 1024
QUIET_ENVIRONMENT = {
    # TensorFlow's C++ logging: 3 keeps even its ERROR lines (cuInit on a host without a GPU,
    # oneDNN falling back to Eigen for an op) off the console; failures reach lipseq as
    # exceptions.
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # Worker processes (preparation pools) start with Python's default filters otherwise.
    "PYTHONWARNINGS": "ignore",
}
# Where lipseq's own code lives: log records from elsewhere are the libraries'.
OWN_PACKAGES = tuple(
    str(Path(__file__).resolve().parents[1] / name) + os.sep
    for name in ("pipelines", "data_prep", "models", "configs", "bench")
)
_TRUE = ("", "true", "t", "1", "yes", "y")


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


def verbose_requested(argv: list[str]) -> bool:
    """Whether the command line asks for --verbose, in any of absl's spellings of a boolean
    (--verbose, --verbose=false, --noverbose; the last wins). It is read before absl parses
    the flags because the choice must be made before TensorFlow is imported."""
    verbose = False
    for argument in argv:
        if argument == "--":
            break
        name, _, value = argument.lstrip("-").partition("=")
        if argument.startswith("-") and name == "verbose":
            verbose = value.lower() in _TRUE
        elif argument.startswith("-") and name == "noverbose":
            verbose = False
    return verbose


@contextlib.contextmanager
def native_stderr_discarded() -> Iterator[None]:
    """Points file descriptor 2 at the null device for the block.

    TensorFlow's shared libraries log from their static initialisers (oneDNN, the CUDA stub,
    absl's "before InitializeLog" notice) while they load, before TF_CPP_MIN_LOG_LEVEL is read
    and before any setting could reach absl's C++ logging; only the descriptor itself can hold
    those lines back.
    """
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class OwnRecordsOnly(logging.Filter):
    """Passes the log records that lipseq's own modules wrote (absl's logger serves every
    library, so the logger's name cannot tell them apart; the source file can)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.pathname.startswith(OWN_PACKAGES)


def log_through_absl(own_records_only: bool) -> None:
    """Sends every Python log record through absl's handler (lipseq's own log format), keeping
    only lipseq's own records when asked. Must run before TensorFlow is imported: TensorFlow
    gives its logger a handler of its own when the root logger has none, which would print its
    records a second time and past any filter."""
    # Late: absl's logging module defines flags, which only a lipseq verb needs.
    from absl import logging as absl_logging

    absl_logging.use_absl_handler()
    if own_records_only:
        absl_logging.get_absl_handler().addFilter(OwnRecordsOnly())


def quiet_libraries() -> None:
    """Keeps the libraries' console output to what lipseq itself says: TensorFlow's C++ lines,
    its start-up lines, Python warnings and other libraries' log records. Must run before
    TensorFlow is imported, and imports it."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore")
    log_through_absl(own_records_only=True)
    with native_stderr_discarded():
        # Late: TensorFlow loads here, inside the discard, so its start-up lines go nowhere.
        import tensorflow  # noqa: F401


def show_library_output() -> None:
    """--verbose: every library's log records through absl's handler, and FFmpeg's warnings
    (damaged frames, a container misdetected), which PyAV keeps off unless asked."""
    log_through_absl(own_records_only=False)
    # Late: PyAV loads FFmpeg's libraries, which only the verbose choice needs here.
    import av.logging

    av.logging.set_level(av.logging.WARNING)
