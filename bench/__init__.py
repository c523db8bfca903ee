"""Benchmarks (`python -m bench.<name>`), on the CPU kernels the `lipseq` command uses.

Run as a program, a bench is quiet by default: its console shows the bench's own lines
(`bench.common.say`), its results and Python errors. TensorFlow's and FFmpeg's start-up and
progress lines, absl INFO/WARNING lines from the libraries and Python warnings appear only
with `--verbose`. Imported (by tests, or by another bench), nothing here changes the process.
"""

import os
import sys

from pipelines.runtime import use_onednn_kernels

use_onednn_kernels()

# `python -m bench.x` sets argv[0] to "-m" while the package is imported; nowhere else is
# this module the start of a bench program.
AS_PROGRAM = bool(sys.argv) and sys.argv[0] == "-m"
VERBOSE = AS_PROGRAM and "--verbose" in sys.argv[1:]


def _quiet_libraries() -> None:
    """Sends what native libraries write to fd 2 to /dev/null, keeping Python's own stderr.

    TensorFlow prints its oneDNN/CUDA/CPU-feature lines before its log level is read, so no
    environment variable hides them; redirecting the file descriptor does. Python's sys.stderr
    keeps a copy of the original descriptor, so tracebacks and the bench's errors still show.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's AV_LOG_QUIET
    saved = os.dup(2)
    sys.stderr = os.fdopen(saved, "w", buffering=1, closefd=False)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    # absl's own flag: only errors from the libraries' Python logging.
    sys.argv.append("--verbosity=-2")
    import warnings

    warnings.simplefilter("ignore")


if AS_PROGRAM:
    if VERBOSE:
        sys.argv.remove("--verbose")  # absl defines no such flag
    else:
        _quiet_libraries()
