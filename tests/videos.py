"""Videos the tests cut from generated ones."""

from pathlib import Path

import cv2


def first_frames(video, path: Path, frames: int) -> Path:
    """The first `frames` frames of `video` written to `path` (MPEG-4 at 25 fps): a clip
    shorter than a model can read."""
    capture = cv2.VideoCapture(str(video))
    kept = [capture.read()[1] for _ in range(frames)]
    capture.release()
    height, width = kept[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height))
    for frame in kept:
        writer.write(frame)
    writer.release()
    return path
