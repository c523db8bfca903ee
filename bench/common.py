"""Helpers shared by the benchmarks: machine description, peak memory, JSON output."""

import datetime
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

from data_prep.atomic import write_json_atomic
from pipelines.runtime import ONEDNN_ENV

# The host's load when the bench started (this module is imported at its start).
LOAD_AT_START = [round(v, 2) for v in os.getloadavg()]


def machine_info() -> dict:
    """What the figures were measured on."""
    import tensorflow as tf  # here, so that peak_rss_mb is cheap to import in a bench child

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        # Other work on the host when the file was written: figures are ratios within one run
        # because a busy or different host moves absolute ones.
        "load_average_1_5_15_min_at_start": LOAD_AT_START,
        "load_average_1_5_15_min_at_end": [round(v, 2) for v in os.getloadavg()],
        "gpus": [gpu.name for gpu in gpus],
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        # TensorFlow's oneDNN CPU kernels: "1" wherever lipseq's runtime set it.
        ONEDNN_ENV.lower(): os.environ.get(ONEDNN_ENV, "unset"),
    }


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), or the platform's processor elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def say(message: str) -> None:
    """A bench's own progress line: on stdout, shown whether or not --verbose is given."""
    print(message, file=sys.stdout, flush=True)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    On Linux this is VmHWM, the high-water mark of the process's own address space. getrusage's
    ru_maxrss keeps the parent's peak across fork and exec: a child of a 3 GiB bench process
    reports 3 GiB from its first instruction, which is how a 2.58 GB "video pipeline" figure
    came about. Elsewhere ru_maxrss is all there is.
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) / 1024.0


def spread(values, digits: int = 1) -> dict:
    """Median, min and max of repeated measurements, rounded: how every bench reports them."""
    values = [float(v) for v in values]
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def source_state() -> dict:
    """The commit measured and the tracked files that differed from it, so a figure can be
    traced to the code that made it (None where this is not a git checkout)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return out.stdout if out.returncode == 0 else None

    commit, changed = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": None if commit is None else commit.strip(),
        # Porcelain lines are "XY path": two status letters and a space before the path.
        "uncommitted_changes": None if changed is None else [x[3:] for x in changed.splitlines()],
    }


# What the bench imported: the commit and uncommitted files when it started (its modules are
# loaded then), not when it ends, since a long run can outlast a commit in the same checkout.
SOURCE_AT_START = source_state()


def write_results(name: str, results: dict, output_dir: str | Path) -> Path:
    """Writes bench/results/<name>.json atomically, with a timestamp and machine info."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "source": SOURCE_AT_START,
        **results,
    }
    return write_json_atomic(output_dir / f"{name}.json", payload)


def finish(result) -> None:
    """Waits until `result` is computed: a tensor's .numpy() blocks until its device is done
    (a GPU runs ops asynchronously, so a timer stopped before that measures only the launch)."""
    if hasattr(result, "numpy"):
        result.numpy()


def interleaved_seconds(calls: dict, rounds: int, steps: int) -> dict[str, list[float]]:
    """Seconds per call of each already-warmed function, timed `steps` calls at a time, the
    functions taking turns within each of `rounds` rounds, so all see the same machine state
    and a ratio can be taken within each round."""
    seconds = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            for _ in range(steps):
                finish(call())
            seconds[name].append((time.perf_counter() - started) / steps)
    return seconds


def ratio_spread(values, baseline, digits: int = 3) -> dict:
    """Median, min and max of values[i] / baseline[i], each ratio taken within its round."""
    return spread([v / b for v, b in zip(values, baseline, strict=True)], digits)
