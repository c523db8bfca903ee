"""Videos of any length and size read as a stream: frames at a fixed rate, by their timestamps.

    for index, frame in stream_frames("talk.mp4", fps=25.0, max_side=640):
        ...   # frame: uint8 RGB [H, W, 3], at most 640 pixels on its longer side

Only one decoded frame is held at a time, so memory does not grow with the video's length or
resolution: FFmpeg (inside PyAV) scales each frame down as it converts it to RGB. Frames are
placed on the output clock by their presentation time, so a variable-rate video comes out at
`fps`, and a frame's rotation metadata (phone videos) is applied. Problems raise VideoError
with the same reasons as data_prep.video.read_video, plus "audio_only".
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data_prep.video import VideoError, _check_path


def _scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    longest = max(width, height)
    if not max_side or longest <= max_side:
        return width, height
    scale = max_side / longest
    # Even sizes: FFmpeg's RGB conversion of 4:2:0 video wants them.
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def _rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    """The picture as it is meant to be shown; `degrees` is counter-clockwise display rotation."""
    turns = int(round(degrees / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def stream_frames(
    path: str | os.PathLike, fps: float = 25.0, max_side: int | None = 640
) -> Iterator[tuple[int, np.ndarray]]:
    """(output index, uint8 RGB frame) at `fps`, each the decoded frame nearest its time."""
    import av

    path = Path(path)
    _check_path(path)
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise VideoError(path, "unreadable", f"FFmpeg cannot open it ({error})") from None
    with container:
        if not container.streams.video:
            if container.streams.audio:
                raise VideoError(path, "audio_only", "the file has sound but no video stream")
            raise VideoError(path, "zero_frames", "the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from _resampled(path, container, stream, fps, max_side)


def _resampled(path, container, stream, fps, max_side):
    import av

    period = 1.0 / fps
    emitted = 0
    previous: tuple[float, np.ndarray] | None = None
    size = None
    try:
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if size is None:
                size = _scaled_size(frame.width, frame.height, max_side)
            image = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
            image = _rotated(image, getattr(frame, "rotation", 0) or 0)
            if previous is not None:
                # Output times before the midpoint of two decoded frames take the earlier one.
                middle = (previous[0] + frame.time) / 2.0
                while emitted * period < middle:
                    yield emitted, previous[1]
                    emitted += 1
            previous = (float(frame.time), image)
    except av.error.FFmpegError as error:
        if previous is None:
            raise VideoError(path, "unreadable", f"no frame decodes ({error})") from None
        # Damage after good frames: keep what decoded, as a truncated broadcast would be kept.
    if previous is None:
        raise VideoError(path, "zero_frames", "the video stream holds no frames")
    frame_duration = float(stream.average_rate and 1.0 / stream.average_rate or period)
    end = previous[0] + frame_duration
    while emitted * period < end - period / 2.0 or emitted == 0:
        yield emitted, previous[1]
        emitted += 1
