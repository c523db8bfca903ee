"""Pictures people would rather look at than read: training curves and attention maps."""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save_atomic(figure, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(figure)
    os.replace(tmp, path)


def plot_training_curves(records: list[dict], path: str | Path) -> Path | None:
    """Loss, learning rate, throughput and validation metrics against step, in one PNG."""
    panels = [
        ("loss", "training loss"),
        ("learning_rate", "learning rate"),
        ("target_tokens_per_second", "target tokens/s"),
        ("val_bleu", "validation BLEU"),
        ("val_wer", "validation WER"),
    ]
    present = [(key, title) for key, title in panels if any(key in r for r in records)]
    if not present:
        return None
    figure, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.2))
    axes = np.atleast_1d(axes)
    for axis, (key, title) in zip(axes, present, strict=True):
        points = [(r["step"], r[key]) for r in records if key in r]
        steps, values = zip(*points, strict=True)
        axis.plot(steps, values, marker="o" if len(points) < 30 else None)
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    _save_atomic(figure, Path(path))
    return Path(path)


def plot_attention(
    alignment: np.ndarray, source_labels: list[str], target_labels: list[str], path: str | Path
) -> Path:
    """Heat map of one alignment matrix [target, source]."""
    alignment = np.asarray(alignment)[: len(target_labels), : len(source_labels)]
    figure, axis = plt.subplots(
        figsize=(max(4, 0.35 * len(source_labels) + 2), max(3, 0.3 * len(target_labels) + 2))
    )
    axis.imshow(alignment, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    axis.set_xticks(range(len(source_labels)), source_labels, rotation=90, fontsize=8)
    axis.set_yticks(range(len(target_labels)), target_labels, fontsize=8)
    axis.set_xlabel("source")
    axis.set_ylabel("output")
    _save_atomic(figure, Path(path))
    return Path(path)
