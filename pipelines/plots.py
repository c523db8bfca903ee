"""Pictures people would rather look at than read: training curves and attention maps."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from data_prep.atomic import atomic_path  # noqa: E402


def _save_atomic(figure, path: Path) -> None:
    with atomic_path(path, suffix=Path(path).suffix or ".png") as tmp:
        figure.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(figure)


def plot_training_curves(records: list[dict], path: str | Path) -> Path | None:
    """Loss, learning rate, throughput and validation metrics against step, and each
    validation metric against minutes and examples seen (hosts differ in speed; the
    examples-seen curve compares recipes across them), in one PNG."""
    panels = [
        ("loss", "training loss", "step"),
        ("learning_rate", "learning rate", "step"),
        ("target_tokens_per_second", "target tokens/s", "step"),
    ]
    for key in sorted({k for r in records for k in r if k.startswith("val_")}):
        name = f"validation {key[4:].upper()}"
        panels += [(key, name, "step"), (key, name, "train_minutes"), (key, name, "examples_seen")]
    present = [
        (key, title, x) for key, title, x in panels if any(key in r and x in r for r in records)
    ]
    if not present:
        return None
    columns = min(len(present), 3)
    rows = -(-len(present) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    labels = {"step": "step", "train_minutes": "minutes", "examples_seen": "examples seen"}
    for axis, (key, title, x) in zip(axes.flat, present, strict=False):
        points = [(r[x], r[key]) for r in records if key in r and x in r]
        xs, values = zip(*points, strict=True)
        axis.plot(xs, values, marker="o" if len(points) < 30 else None)
        axis.set_title(title)
        axis.set_xlabel(labels[x])
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(present) :]:
        axis.axis("off")
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


def plot_alignment_over_frames(
    alignment: np.ndarray, crops: np.ndarray, text: str, path: str | Path
) -> Path:
    """Attention weights [output chars, frames] drawn above a strip of the mouth frames."""
    characters = list(text) + ["</s>"]
    alignment = alignment[: len(characters), : len(crops)]
    picks = np.linspace(0, len(crops) - 1, min(12, len(crops))).round().astype(int)
    strip = np.concatenate([crops[i] for i in picks], axis=1)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), gridspec_kw={"height_ratios": [3, 1]}
    )
    top.imshow(alignment, aspect="auto", cmap="viridis", vmin=0, vmax=max(alignment.max(), 1e-6))
    top.set_yticks(range(len(characters)), ["␣" if c == " " else c for c in characters], fontsize=7)
    top.set_xlabel("frame")
    top.set_title(f"attention: {text!r}")
    bottom.imshow(strip.squeeze(), cmap="gray" if strip.shape[-1] == 1 else None)
    bottom.set_xticks(
        [(i + 0.5) * crops.shape[2] for i in range(len(picks))], [str(i) for i in picks], fontsize=7
    )
    bottom.set_yticks([])
    figure.tight_layout()
    _save_atomic(figure, Path(path))
    return Path(path)


def plot_wer_against_snr(table: dict, path: str | Path, title: str = "") -> Path:
    """WER (%) against SNR (dB) per modality: table {modality: {snr label: wer}}, where the
    label "clean" is drawn right of the highest SNR."""
    figure, axis = plt.subplots(figsize=(6, 4))
    labels = sorted(
        {snr for row in table.values() for snr in row},
        key=lambda s: float("inf") if s == "clean" else float(s),
    )
    numeric = [float(s) for s in labels if s != "clean"]
    clean_at = (max(numeric) + 5.0) if numeric else 0.0
    positions = {s: clean_at if s == "clean" else float(s) for s in labels}
    for modality, row in table.items():
        points = sorted((positions[s], wer) for s, wer in row.items())
        axis.plot([p for p, _ in points], [w for _, w in points], marker="o", label=modality)
    axis.set_xticks([positions[s] for s in labels], labels)
    axis.set_xlabel("SNR (dB)")
    axis.set_ylabel("WER (%)")
    axis.grid(alpha=0.3)
    axis.legend()
    if title:
        axis.set_title(title)
    _save_atomic(figure, Path(path))
    return Path(path)
