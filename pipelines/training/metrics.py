"""The training log: metrics.jsonl (one JSON object a line) mirrored to TensorBoard."""

import json
from pathlib import Path

import tensorflow as tf


class MetricsLog:
    """Appends one JSON object per line to workdir/metrics.jsonl and mirrors to TensorBoard."""

    def __init__(self, workdir: Path):
        self.path = workdir / "metrics.jsonl"
        self.writer = tf.summary.create_file_writer(str(workdir / "tensorboard"))

    def write(self, step: int, **scalars: float) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        with self.writer.as_default(step=step):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
        self.writer.flush()

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def format_duration(seconds: float) -> str:
    """H:MM:SS."""
    seconds = int(max(0, seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
