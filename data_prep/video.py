"""Video decoding for data preparation: checked reads, frame-rate resampling, damage detection.

`read_video` decodes any container FFmpeg inside OpenCV reads (.mpg .mp4 .avi .mov ...) into
uint8 frames [T,H,W,C] (RGB, or grayscale with C=1), checks the frame count and rate against
the header, and resamples to a target rate by nearest-frame selection. Problems raise
`VideoError` with a machine-readable `reason`, so a corpus preparer can skip the file and
record why. `detect_corrupt_frames` flags frames that decoded as grey or blocky garbage.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from data_prep.errors import LipseqError

DEFAULT_FPS = 25.0
MIN_VALID_FPS = 1.0
MAX_VALID_FPS = 1000.0
RESAMPLE_TOLERANCE = 0.01

REASONS = frozenset(
    {
        "missing_file",  # no such path
        "not_a_file",  # a directory or other non-regular file
        "empty_file",  # zero bytes
        "unreadable",  # cannot be opened or no frame decodes (unknown container/codec, garbage)
        "zero_frames",  # opens, but holds no frames
        "truncated",  # fewer frames decode than the header announces, by a margin
        "too_small",  # frame side below the minimum
        "too_large",  # frame area or decoded size above the maximum
        "audio_only",  # sound but no video stream
        "inconsistent_size",  # frame size changes within the stream
    }
)

WARNINGS = frozenset(
    {
        "fps_fallback",  # header rate missing or absurd; DEFAULT_FPS assumed
        "frame_count_unknown",  # header has no usable frame count
        "frame_count_mismatch",  # decoded count differs from the header within tolerance
        "variable_frame_rate",  # frames placed on the output clock by their timestamps
    }
)


class VideoError(LipseqError, ValueError):
    """A video that cannot be used; `reason` is one of REASONS, `path` names the file."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown VideoError reason {reason!r}")
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path}: {reason}: {detail}")


@dataclass(frozen=True)
class VideoClip:
    """Decoded frames uint8 [T,H,W,C] (C=3 RGB or 1 gray) at `fps`, with source information.

    `num_source_frames` counts the frames decoded from the file (before resampling);
    `warnings` holds codes from WARNINGS, e.g. "fps_fallback" when the header rate was unusable.
    """

    frames: np.ndarray
    fps: float
    source_fps: float
    num_source_frames: int
    width: int
    height: int
    path: str
    warnings: tuple[str, ...] = ()

    @property
    def num_frames(self) -> int:
        """T, the number of output frames."""
        return int(self.frames.shape[0])

    @property
    def fps_fallback(self) -> bool:
        """True when the header frame rate was unusable and DEFAULT_FPS was assumed."""
        return "fps_fallback" in self.warnings

    @property
    def duration_s(self) -> float:
        """Length in seconds at the output rate."""
        return self.num_frames / self.fps


def _valid_fps(fps: float) -> bool:
    return math.isfinite(fps) and MIN_VALID_FPS <= fps <= MAX_VALID_FPS


def _check_path(path: Path) -> None:
    if not path.exists():
        raise VideoError(path, "missing_file", "no such file")
    if not path.is_file():
        raise VideoError(path, "not_a_file", "not a regular file")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty_file", "file is empty (0 bytes)")


def _open(path: Path) -> cv2.VideoCapture:
    _check_path(path)
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        if _is_audio_only(path):
            raise VideoError(path, "audio_only", "the file has sound but no video stream")
        raise VideoError(
            path, "unreadable", "FFmpeg cannot open it (unknown container or codec, or damaged)"
        )
    return cap


def _is_audio_only(path: Path) -> bool:
    """True when FFmpeg (PyAV) finds audio streams and no video stream in the file."""

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio) and not container.streams.video
    except (av.error.FFmpegError, UnicodeDecodeError):
        return False


def _fourcc(cap: cv2.VideoCapture) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip() else ""


def probe_video(path: str | os.PathLike) -> dict[str, Any]:
    """Header facts of a video, decoding only its first frame.

    Keys: path, size_bytes, codec, width, height (of the decoded frame), header_fps,
    fps (usable rate, DEFAULT_FPS on fallback), fps_fallback, frame_count (header, or None
    when unknown) and duration_s (None when unknown). Raises VideoError.
    """
    path = Path(path)
    cap = _open(path)
    try:
        header_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        frame_count = int(count) if math.isfinite(count) and count > 0 else None
        ok, frame = cap.read()
        codec = _fourcc(cap)
    finally:
        cap.release()
    if not ok or frame is None:
        if frame_count is None:
            raise VideoError(path, "zero_frames", "the stream holds no frames")
        raise VideoError(path, "unreadable", "no frame decodes (unsupported codec or damaged data)")
    fps_ok = _valid_fps(header_fps)
    fps = header_fps if fps_ok else DEFAULT_FPS
    return {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "codec": codec,
        "width": int(frame.shape[1]),
        "height": int(frame.shape[0]),
        "header_fps": header_fps,
        "fps": fps,
        "fps_fallback": not fps_ok,
        "frame_count": frame_count,
        "duration_s": frame_count / fps if frame_count else None,
    }


def iter_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decoded frames as OpenCV gives them, uint8 BGR [H,W,3]: no count checks, no conversion."""
    cap = _open(Path(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def _source_index(i: int, ratio: float) -> int:
    return int(math.floor(i * ratio + 0.5))


def read_video(
    path: str | os.PathLike,
    target_fps: float | None = DEFAULT_FPS,
    grayscale: bool = False,
    max_frames: int | None = None,
    *,
    min_side: int = 32,
    max_pixels: int = 1920 * 1088,
    max_bytes: int = 2 << 30,
    truncation_tolerance: float = 0.05,
    max_side: int | None = None,
) -> VideoClip:
    """Decodes a video into uint8 frames [T,H,W,3] RGB (or [T,H,W,1] when grayscale).

    With `max_side`, frames whose longer side exceeds it are scaled down (INTER_AREA) as
    they are decoded, and `max_pixels` applies to the scaled frames: a 4K video then costs
    memory like a small one. `width` and `height` of the clip stay those of the source.

    Resamples to `target_fps` by nearest-frame selection unless the source rate is within 1%
    of it (or target_fps is None); `max_frames` caps T. A frame count short of the header's by
    more than `truncation_tolerance` (and at least 3 frames) is "truncated". Frames with a
    side under `min_side`, an area over `max_pixels`, or a decoded size over `max_bytes` are
    refused. Raises VideoError naming the file and reason.
    """
    if target_fps is not None and not (math.isfinite(target_fps) and target_fps > 0):
        raise ValueError(f"target_fps must be a positive number or None, got {target_fps}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
    path = Path(path)
    cap = _open(path)
    if target_fps is not None and _variable_rate(path):
        cap.release()
        return _read_by_timestamps(
            path, target_fps, grayscale, max_frames, min_side, max_pixels, max_bytes, max_side
        )
    try:
        return _decode(
            cap,
            path,
            target_fps,
            grayscale,
            max_frames,
            min_side,
            max_pixels,
            max_bytes,
            truncation_tolerance,
            max_side,
        )
    finally:
        cap.release()


def _variable_rate(path: Path) -> bool:
    """True when the stream's average frame rate is not its nominal one (a phone's variable
    rate), or when a Matroska/WebM stream declares no frame count (a browser's MediaRecorder
    writes frames at the camera's pace and no count): counting frames would then put them at
    the wrong times, and a count estimated from the duration would look truncated."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return False
            stream = container.streams.video[0]
            average, nominal = stream.average_rate, stream.guessed_rate
            if "matroska" in container.format.name and not stream.frames:
                return True
    except (av.error.FFmpegError, UnicodeDecodeError):
        return False
    if not average or not nominal:
        return False
    return abs(float(average) / float(nominal) - 1.0) > RESAMPLE_TOLERANCE


def _read_by_timestamps(
    path: Path,
    target_fps: float,
    grayscale: bool,
    max_frames: int | None,
    min_side: int,
    max_pixels: int,
    max_bytes: int,
    max_side: int | None,
) -> VideoClip:
    """read_video for variable-rate videos: each output frame is the decoded frame nearest
    its time (stream_frames), at `target_fps`."""
    probe = probe_video(path)
    width, height = probe["width"], probe["height"]
    _check_size(path, *_output_size(width, height, max_side), min_side, max_pixels)
    frames: list[np.ndarray] = []
    size = 0
    for index, frame in stream_frames(path, target_fps, max_side):
        if max_frames is not None and index >= max_frames:
            break
        if grayscale:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[:, :, None]
        size += frame.nbytes
        if size > max_bytes:
            raise VideoError(path, "too_large", f"more than {index} frames exceed max_bytes")
        frames.append(frame)
    return VideoClip(
        frames=np.stack(frames),
        fps=float(target_fps),
        source_fps=probe["fps"],
        num_source_frames=probe["frame_count"] or len(frames),
        width=width,
        height=height,
        path=str(path),
        warnings=("variable_frame_rate",),
    )


def _output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most `max_side` (aspect kept)."""
    longest = max(width, height)
    if not max_side or longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _check_size(path: Path, width: int, height: int, min_side: int, max_pixels: int) -> None:
    if min(width, height) < min_side:
        raise VideoError(
            path, "too_small", f"frames are {width}x{height}, below the minimum side {min_side}"
        )
    if width * height > max_pixels:
        raise VideoError(
            path,
            "too_large",
            f"frames are {width}x{height} = {width * height} pixels, above max_pixels={max_pixels}",
        )


def _decode(
    cap: cv2.VideoCapture,
    path: Path,
    target_fps: float | None,
    grayscale: bool,
    max_frames: int | None,
    min_side: int,
    max_pixels: int,
    max_bytes: int,
    truncation_tolerance: float,
    max_side: int | None = None,
) -> VideoClip:
    warnings: list[str] = []
    header_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    if _valid_fps(header_fps):
        source_fps = header_fps
    else:
        source_fps = DEFAULT_FPS
        warnings.append("fps_fallback")
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    header_count = int(count) if math.isfinite(count) and count > 0 else None
    if header_count is None:
        warnings.append("frame_count_unknown")
    header_w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
    header_h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if header_w > 0 and header_h > 0:
        _check_size(path, *_output_size(header_w, header_h, max_side), min_side, max_pixels)

    resample = target_fps is not None and abs(source_fps / target_fps - 1.0) > RESAMPLE_TOLERANCE
    fps = float(target_fps) if resample else source_fps
    ratio = source_fps / fps

    ok, first = cap.read()
    if not ok or first is None:
        if header_count is None:
            raise VideoError(path, "zero_frames", "the stream holds no frames")
        raise VideoError(
            path, "unreadable", f"no frame decodes although the header announces {header_count}"
        )
    source_height, source_width = first.shape[:2]
    width, height = _output_size(source_width, source_height, max_side)
    scaled = (width, height) != (source_width, source_height)
    _check_size(path, width, height, min_side, max_pixels)
    channels = 1 if grayscale else 3
    frame_bytes = height * width * channels

    expected = 64 if header_count is None else int(math.ceil(header_count / ratio - 1e-6))
    if max_frames is not None:
        expected = min(expected, max_frames)
    if header_count is not None and expected * frame_bytes > max_bytes:
        raise VideoError(
            path,
            "too_large",
            f"{expected} frames of {width}x{height}x{channels} exceed max_bytes={max_bytes} "
            "(read fewer with max_frames, or raise max_bytes)",
        )
    out = np.empty((max(expected, 1), height, width, channels), np.uint8)
    scratch = np.empty((source_height, source_width, 3), np.uint8)

    def target(index: int) -> np.ndarray:
        return scratch if grayscale or scaled or index >= len(out) else out[index]

    def reserve(index: int) -> None:
        nonlocal out
        if index >= len(out):
            if 2 * len(out) * frame_bytes > max_bytes:
                raise VideoError(
                    path, "too_large", f"more than {len(out)} frames exceed max_bytes={max_bytes}"
                )
            out = np.concatenate([out, np.empty_like(out)])

    def store(index: int, bgr: np.ndarray) -> None:
        reserve(index)
        if scaled:
            bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
        if grayscale:
            cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY, dst=out[index, :, :, 0])
            return
        slot = out[index]
        if bgr.ctypes.data != slot.ctypes.data:
            slot[...] = bgr
        cv2.cvtColor(slot, cv2.COLOR_BGR2RGB, dst=slot)

    n_out = 0
    decoded = 0
    frame: np.ndarray | None = first
    reached_cap = False
    while True:
        if frame is None:
            if _source_index(n_out, ratio) > decoded:
                if not cap.grab():
                    break
                decoded += 1
                continue
            ok, frame = cap.read(target(n_out))
            if not ok or frame is None:
                break
            if frame.shape[:2] != (source_height, source_width):
                raise VideoError(
                    path,
                    "inconsistent_size",
                    f"frame {decoded} is {frame.shape[1]}x{frame.shape[0]}, "
                    f"the first was {source_width}x{source_height}",
                )
        store(n_out, frame)
        n_out += 1
        decoded += 1
        while _source_index(n_out, ratio) < decoded and (max_frames is None or n_out < max_frames):
            reserve(n_out)
            out[n_out] = out[n_out - 1]
            n_out += 1
        frame = None
        if max_frames is not None and n_out >= max_frames:
            reached_cap = True
            break

    if not reached_cap and header_count is not None and decoded != header_count:
        margin = max(3, int(math.ceil(truncation_tolerance * header_count)))
        if decoded < header_count - margin:
            raise VideoError(
                path,
                "truncated",
                f"decoded {decoded} of the {header_count} frames the header announces",
            )
        warnings.append("frame_count_mismatch")
    frames = out[:n_out] if n_out >= 0.9 * len(out) else out[:n_out].copy()
    return VideoClip(
        frames=frames,
        fps=fps,
        source_fps=source_fps,
        num_source_frames=decoded,
        width=source_width,
        height=source_height,
        path=str(path),
        warnings=tuple(warnings),
    )


def _blockiness(gray: np.ndarray, block: int) -> float:
    """Share of strong steps on the block grid of a uint8 image [H,W] between textureless blocks."""
    height, width = gray.shape
    rows, cols = height // block, width // block
    if rows < 2 or cols < 2:
        return 0.0
    g = gray[: rows * block, : cols * block]
    dx = np.zeros(g.shape, np.uint8)
    dy = np.zeros(g.shape, np.uint8)
    cv2.absdiff(g[:, 1:], g[:, :-1], dst=dx[:, :-1])
    cv2.absdiff(g[1:], g[:-1], dst=dy[:-1])
    last = block - 1
    step_x = dx[:, last::block].reshape(rows, block, cols).mean(axis=1, dtype=np.float32)[:, :-1]
    step_y = dy[last::block].reshape(rows, cols, block).mean(axis=2, dtype=np.float32)[:-1]
    dx[:, last::block] = 0
    dy[last::block] = 0
    scale = block / (block - 1)
    inner_x = cv2.resize(dx.astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA)
    inner_y = cv2.resize(dy.astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA)
    texture_x = scale * np.maximum(inner_x[:, :-1], inner_x[:, 1:])
    texture_y = scale * np.maximum(inner_y[:-1], inner_y[1:])
    strong_x, strong_y = step_x > 6.0, step_y > 6.0
    grid_x = strong_x & (step_x > 3.0 * texture_x + 1.0)
    grid_y = strong_y & (step_y > 3.0 * texture_y + 1.0)
    strong = np.count_nonzero(strong_x) + np.count_nonzero(strong_y)
    return (np.count_nonzero(grid_x) + np.count_nonzero(grid_y)) / (strong + 20.0)


def corruption_scores(frames: np.ndarray, block: int = 8) -> dict[str, np.ndarray]:
    """Per-frame damage measures for uint8 frames [T,H,W,C] (or [T,H,W]), each float32 [T].

    std: grey-level standard deviation. grey_fraction: share of pixels at mid-grey
    (all channels within 3 of 128), the colour MPEG decoders fill missing blocks with.
    blockiness: share of strong steps (mean step > 6 grey levels along a block edge) on the
    `block` grid that are over 3 times the texture inside the blocks on either side, i.e.
    edges made by the block grid rather than by the scene.
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3) or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [T,H,W,1|3], got {frames.dtype} {frames.shape}")
    count = len(frames)
    std = np.zeros(count, np.float32)
    grey = np.zeros(count, np.float32)
    blocky = np.zeros(count, np.float32)
    for t in range(count):
        frame = frames[t]
        if frame.shape[2] == 3:
            gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            near = cv2.inRange(frame, (125, 125, 125), (131, 131, 131))
        else:
            gray = np.ascontiguousarray(frame[:, :, 0])
            near = cv2.inRange(gray, 125, 131)
        std[t] = cv2.meanStdDev(gray)[1][0, 0]
        grey[t] = cv2.countNonZero(near) / near.size
        blocky[t] = _blockiness(gray, block)
    return {"std": std, "grey_fraction": grey, "blockiness": blocky}


def detect_corrupt_frames(
    frames: np.ndarray,
    *,
    min_std: float = 4.0,
    max_grey_fraction: float = 0.25,
    max_blockiness: float = 0.12,
) -> np.ndarray:
    """Flags frames that decoded as flat, grey or blocky garbage: bool [T] for frames [T,H,W,C].

    A frame is flagged when its grey-level std is below `min_std`, more than
    `max_grey_fraction` of it is mid-grey, or its blockiness exceeds `max_blockiness`
    (see corruption_scores). Tuned on every frame of the 900 GRID s1 clips: clean frames have
    std >= 36, grey fraction < 0.0001 and blockiness <= 0.08; the damaged frames have std
    0-13 with grey fraction 0.3-1, or blockiness 0.15-0.9.
    """
    scores = corruption_scores(frames)
    return (
        (scores["std"] < min_std)
        | (scores["grey_fraction"] > max_grey_fraction)
        | (scores["blockiness"] > max_blockiness)
    )


# --- Streaming: videos of any length and size, frames placed by their timestamps -----------
#
#     for index, frame in stream_frames("talk.mp4", fps=25.0, max_side=640): ...
#
# Only one decoded frame is held at a time, so memory does not grow with the video's length or
# resolution: FFmpeg (inside PyAV) scales each frame down as it converts it to RGB. Frames are
# placed on the output clock by their presentation time (a variable-rate video comes out at
# `fps`) and a frame's rotation metadata (phone videos) is applied.


def _scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """_output_size rounded to even sides when scaled: FFmpeg's RGB conversion of 4:2:0
    video wants them."""
    scaled = _output_size(width, height, max_side)
    if scaled == (width, height):
        return scaled
    return tuple(max(2, round(side / 2) * 2) for side in scaled)


def _rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    """The picture as it is meant to be shown; `degrees` is counter-clockwise display rotation."""
    turns = int(round(degrees / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def stream_frames(
    path: str | os.PathLike, fps: float = 25.0, max_side: int | None = 640
) -> Iterator[tuple[int, np.ndarray]]:
    """(output index, uint8 RGB frame) at `fps`, each the decoded frame nearest its time."""

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
