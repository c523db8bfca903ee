"""Helpers shared by the benchmarks: machine description, peak memory, JSON output."""

import datetime
import os
import platform
import resource
import statistics
from pathlib import Path

from data_prep.atomic import write_json_atomic
from pipelines.runtime import ONEDNN_ENV


def machine_info() -> dict:
    """What the figures were measured on."""
    import tensorflow as tf  # here, so that peak_rss_mb is cheap to import in a bench child

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": [gpu.name for gpu in gpus],
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        # TensorFlow's oneDNN CPU kernels: "1" wherever lipseq's runtime set it.
        ONEDNN_ENV.lower(): os.environ.get(ONEDNN_ENV, "unset"),
    }


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


def write_results(name: str, results: dict, output_dir: str | Path) -> Path:
    """Writes bench/results/<name>.json atomically, with a timestamp and machine info."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        **results,
    }
    return write_json_atomic(output_dir / f"{name}.json", payload)
