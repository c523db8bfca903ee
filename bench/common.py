"""Helpers shared by the benchmarks: machine description, peak memory, JSON output."""

import datetime
import os
import platform
import resource
from pathlib import Path

import tensorflow as tf

from data_prep.atomic import write_json_atomic


def machine_info() -> dict:
    """What the figures were measured on."""
    gpus = tf.config.list_physical_devices("GPU")
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": [gpu.name for gpu in gpus],
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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
