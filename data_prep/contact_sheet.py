"""Pictures of prepared crops: a contact sheet per run and ROI trajectories per clip."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from data_prep.atomic import atomic_path

LABEL_HEIGHT = 18
GAP = 4


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    return np.repeat(frame, 3, axis=-1) if frame.shape[-1] == 1 else frame


def _write_png_atomic(image_rgb: np.ndarray, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")
    return path


def contact_sheet(
    samples: Sequence[tuple[str, np.ndarray, str]], frames_per_clip: int = 8, scale: int = 2
) -> np.ndarray:
    """One row per (clip_id, crops [T, h, w, C], text): evenly spaced frames, labelled; RGB."""
    if not samples:
        raise ValueError("a contact sheet needs at least one clip")
    height, width = samples[0][1].shape[1:3]
    cell_w, cell_h = width * scale, height * scale
    sheet_w = frames_per_clip * (cell_w + GAP) + GAP
    rows = []
    for clip_id, crops, text in samples:
        row = np.full((LABEL_HEIGHT + cell_h + GAP, sheet_w, 3), 255, np.uint8)
        label = f"{clip_id}: {text}"[:120]
        cv2.putText(row, label, (GAP, LABEL_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
        picks = np.linspace(0, len(crops) - 1, frames_per_clip).round().astype(int)
        for column, index in enumerate(picks):
            cell = cv2.resize(_as_rgb(crops[index]), (cell_w, cell_h),
                              interpolation=cv2.INTER_NEAREST)
            x = GAP + column * (cell_w + GAP)
            row[LABEL_HEIGHT : LABEL_HEIGHT + cell_h, x : x + cell_w] = cell
        rows.append(row)
    return np.concatenate(rows, axis=0)


def write_contact_sheet(
    samples: Sequence[tuple[str, np.ndarray, str]], path: str | os.PathLike,
    frames_per_clip: int = 8,
) -> Path:
    """Writes `contact_sheet(samples)` as a PNG (atomically) and returns its path."""
    return _write_png_atomic(contact_sheet(samples, frames_per_clip), Path(path))


def plot_roi_trajectory(
    boxes: np.ndarray, confidence: np.ndarray, path: str | os.PathLike, title: str = ""
) -> Path:
    """Mouth-box centre, size and confidence over the frames of one clip, as a PNG."""
    # Late: matplotlib is slow to import and only this picture needs it.
    import matplotlib

    matplotlib.use("Agg")
    # Late: pyplot after choosing the file-only backend.
    import matplotlib.pyplot as plt

    boxes = np.asarray(boxes, np.float32)
    frames = np.arange(len(boxes))
    centre_x, centre_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    figure, axes = plt.subplots(3, 1, figsize=(7, 6), sharex=True)
    axes[0].plot(frames, centre_x, label="centre x")
    axes[0].plot(frames, centre_y, label="centre y")
    axes[0].set_ylabel("pixels")
    axes[0].legend(loc="best", fontsize=8)
    axes[1].plot(frames, boxes[:, 2] - boxes[:, 0], label="width")
    axes[1].plot(frames, boxes[:, 3] - boxes[:, 1], label="height")
    axes[1].set_ylabel("pixels")
    axes[1].legend(loc="best", fontsize=8)
    axes[2].plot(frames, confidence, color="tab:green")
    axes[2].set_ylim(0, 1.05)
    axes[2].set_ylabel("confidence")
    axes[2].set_xlabel("frame")
    figure.suptitle(title or "mouth ROI trajectory")
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)
    return path
