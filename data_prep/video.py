"""Video decoding for data preparation: checked reads, frame-rate resampling, damage detection.

`read_video` decodes any container FFmpeg reads (.mpg .mp4 .avi .mov .webm ...) into uint8
frames [T,H,W,C] (RGB, or grayscale with C=1), checks the frame count and rate against the
header, and resamples to a target rate by nearest-frame selection. PyAV (FFmpeg inside its
wheel) decodes; a `VideoSource` opens a file once for its header, frames and sound. Problems raise
`VideoError` with a machine-readable `reason`, so a corpus preparer can skip the file and
record why. `detect_corrupt_frames` flags frames that decoded as grey or blocky garbage.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

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


class VideoSource:
    """A video file opened once: its header facts, then its frames (read_video, stream_frames)
    and its sound (data_prep.audio.read_audio) from the same FFmpeg container.

        with VideoSource("face.mp4") as source:
            if source.duration_s and source.duration_s < 10: clip = read_video(source)

    Opening reads the header only (no frame is decoded); it raises VideoError for a missing,
    empty, unopenable or audio-only file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        _check_path(self.path)
        try:
            self.container = av.open(str(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError):
            raise VideoError(
                self.path,
                "unreadable",
                "FFmpeg cannot open it (unknown container or codec, or damaged)",
            ) from None
        streams = self.container.streams
        if not streams.video:
            has_sound = bool(streams.audio)
            self.close()  # PyAV crashes if streams are read after closing
            if has_sound:
                raise VideoError(self.path, "audio_only", "the file has sound but no video stream")
            raise VideoError(self.path, "unreadable", "FFmpeg finds no video stream in it")
        self.stream = streams.video[0]
        if self.stream.codec_context is None:
            self.close()
            raise VideoError(self.path, "unreadable", "FFmpeg has no decoder for its video codec")
        self.stream.thread_type = "AUTO"  # frame and slice threads, as FFmpeg's own tools
        self.header_fps = _header_rate(self.stream)
        self.frame_count = _header_count(self.container, self.stream, self.header_fps)
        context = self.stream.codec_context
        self.width, self.height = int(context.width or 0), int(context.height or 0)
        self._used = False

    @property
    def fps(self) -> float:
        """The usable frame rate: the header's, or DEFAULT_FPS when that is missing or absurd."""
        return self.header_fps if _valid_fps(self.header_fps) else DEFAULT_FPS

    @property
    def duration_s(self) -> float | None:
        return self.frame_count / self.fps if self.frame_count else None

    @property
    def variable_rate(self) -> bool:
        """True when the stream's average frame rate is not its nominal one (a phone's
        variable rate), or when a Matroska/WebM stream declares no frame count (a browser's
        MediaRecorder writes frames at the camera's pace and no count): counting frames would
        then put them at the wrong times, and a count estimated from the duration would look
        truncated."""
        if "matroska" in self.container.format.name and not self.stream.frames:
            return True
        average, nominal = self.stream.average_rate, self.stream.guessed_rate
        if not average or not nominal:
            return False
        return abs(float(average) / float(nominal) - 1.0) > RESAMPLE_TOLERANCE

    def frames(self) -> Iterator[av.VideoFrame]:
        """The decoded frames from the start (a second call seeks back). Damage after good
        frames ends the stream, as a truncated broadcast would be kept; no frame at all raises
        VideoError."""
        if self._used:
            self.container.seek(0)
        self._used = True
        decoded = 0
        try:
            for frame in self.container.decode(self.stream):
                decoded += 1
                yield frame
        except av.error.FFmpegError as error:
            if not decoded:
                raise VideoError(self.path, "unreadable", f"no frame decodes ({error})") from None

    def rewind(self) -> av.container.InputContainer:
        """The container at its start, for another stream's reader (the sound)."""
        if self._used:
            self.container.seek(0)
        self._used = True
        return self.container

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_video(video: str | os.PathLike | VideoSource) -> contextlib.AbstractContextManager:
    """A VideoSource for a path (closed on leaving), or the caller's own open source (left
    open for them)."""
    if isinstance(video, VideoSource):
        return contextlib.nullcontext(video)
    return VideoSource(video)


def _header_rate(stream) -> float:
    """The frames per second the header declares: the average rate, else FFmpeg's guess."""
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate:
            return float(rate)
    return 0.0


def _header_count(container, stream, fps: float) -> int | None:
    """Frames the header announces: the stream's count, else its duration times its rate
    (what FFmpeg-based readers report for containers without a count); None when unknown."""
    if stream.frames:
        return int(stream.frames)
    if container.duration:
        seconds = container.duration / av.time_base
    elif stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    else:
        return None
    count = int(math.floor(seconds * fps + 0.5)) if _valid_fps(fps) else 0
    return count if count > 0 else None


class _Converter:
    """Decoded frames to uint8 RGB arrays, reusing one FFmpeg scaler (about twice as fast as
    a new one per frame), turned as the display rotation says."""

    def __init__(self):
        self.reformatter = VideoReformatter()

    def rgb(self, frame: av.VideoFrame, size: tuple[int, int] | None = None) -> np.ndarray:
        width, height = size or (None, None)
        image = self.reformatter.reformat(frame, format="rgb24", width=width, height=height)
        return _rotated(image.to_ndarray(), getattr(frame, "rotation", 0) or 0)


def probe_video(path: str | os.PathLike | VideoSource) -> dict[str, Any]:
    """Header facts of a video, decoding only its first frame.

    Keys: path, size_bytes, codec, width, height (of the decoded frame), header_fps,
    fps (usable rate, DEFAULT_FPS on fallback), fps_fallback, frame_count (header, or None
    when unknown) and duration_s (None when unknown). Raises VideoError.
    """
    with open_video(path) as source:
        first = next(source.frames(), None)
        if first is None:
            if source.frame_count is None:
                raise VideoError(source.path, "zero_frames", "the stream holds no frames")
            raise VideoError(
                source.path, "unreadable", "no frame decodes (unsupported codec or damaged data)"
            )
        height, width = _Converter().rgb(first).shape[:2]
        context = source.stream.codec_context
        return {
            "path": str(source.path),
            "size_bytes": source.path.stat().st_size,
            "codec": context.codec_tag if context.codec_tag.isprintable() else context.name,
            "width": width,
            "height": height,
            "header_fps": source.header_fps,
            "fps": source.fps,
            "fps_fallback": not _valid_fps(source.header_fps),
            "frame_count": source.frame_count,
            "duration_s": source.duration_s,
        }


def iter_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decoded frames as OpenCV works with them, uint8 BGR [H,W,3]: no count checks."""
    converter = _Converter()
    with VideoSource(path) as source:
        for frame in source.frames():
            yield converter.rgb(frame)[:, :, ::-1]


def _source_index(i: int, ratio: float) -> int:
    return int(math.floor(i * ratio + 0.5))


def read_video(
    path: str | os.PathLike | VideoSource,
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
    """Decodes a video (a path, or an open VideoSource) into uint8 frames [T,H,W,3] RGB (or
    [T,H,W,1] when grayscale).

    With `max_side`, frames whose longer side exceeds it are scaled down (INTER_AREA) as
    they are decoded, and `max_pixels` applies to the scaled frames: a 4K video then costs
    memory like a small one. `width` and `height` of the clip stay those of the source.

    Resamples to `target_fps` by nearest-frame selection unless the source rate is within 1%
    of it (or target_fps is None); a variable-rate video is placed on the output clock by its
    timestamps. `max_frames` caps T. A frame count short of the header's by more than
    `truncation_tolerance` (and at least 3 frames) is "truncated". Frames with a side under
    `min_side`, an area over `max_pixels`, or a decoded size over `max_bytes` are refused.
    Raises VideoError naming the file and reason.
    """
    if target_fps is not None and not (math.isfinite(target_fps) and target_fps > 0):
        raise ValueError(f"target_fps must be a positive number or None, got {target_fps}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
    limits = _Limits(min_side, max_pixels, max_bytes, max_side)
    with open_video(path) as source:
        if target_fps is not None and source.variable_rate:
            return _read_by_timestamps(source, target_fps, grayscale, max_frames, limits)
        return _decode(source, target_fps, grayscale, max_frames, limits, truncation_tolerance)


@dataclass(frozen=True)
class _Limits:
    """The sizes read_video refuses, and the side it scales frames down to."""

    min_side: int
    max_pixels: int
    max_bytes: int
    max_side: int | None

    def check(self, path: Path, width: int, height: int) -> tuple[int, int]:
        """The output size of width x height source frames; VideoError when out of bounds."""
        width, height = _output_size(width, height, self.max_side)
        _check_size(path, width, height, self.min_side, self.max_pixels)
        return width, height


def _read_by_timestamps(
    source: VideoSource,
    target_fps: float,
    grayscale: bool,
    max_frames: int | None,
    limits: _Limits,
) -> VideoClip:
    """read_video for variable-rate videos: each output frame is the decoded frame nearest
    its time (stream_frames), at `target_fps`."""
    if source.width and source.height:
        limits.check(source.path, source.width, source.height)
    frames: list[np.ndarray] = []
    size = 0
    for index, frame in stream_frames(source, target_fps, limits.max_side):
        if max_frames is not None and index >= max_frames:
            break
        if grayscale:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[:, :, None]
        size += frame.nbytes
        if size > limits.max_bytes:
            raise VideoError(source.path, "too_large", f"more than {index} frames exceed max_bytes")
        frames.append(frame)
    return VideoClip(
        frames=np.stack(frames),
        fps=float(target_fps),
        source_fps=source.fps,
        num_source_frames=source.frame_count or len(frames),
        width=source.width,
        height=source.height,
        path=str(source.path),
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


class _FrameBuffer:
    """Output frames [T, h, w, C] in one growing array, refused past max_bytes."""

    def __init__(self, path: Path, expected: int | None, max_frames: int | None, shape, max_bytes):
        self.path, self.max_bytes = path, max_bytes
        self.frame_bytes = int(np.prod(shape))
        known = expected is not None
        expected = 64 if expected is None else expected  # grows by doubling past a guess
        expected = expected if max_frames is None else min(expected, max_frames)
        if known and expected * self.frame_bytes > max_bytes:
            raise VideoError(
                path,
                "too_large",
                f"{expected} frames of {'x'.join(map(str, shape))} exceed max_bytes={max_bytes} "
                "(read fewer with max_frames, or raise max_bytes)",
            )
        self.frames = np.empty((max(expected, 1), *shape), np.uint8)
        self.count = 0

    def append(self, image: np.ndarray) -> None:
        if self.count >= len(self.frames):
            if 2 * len(self.frames) * self.frame_bytes > self.max_bytes:
                raise VideoError(
                    self.path,
                    "too_large",
                    f"more than {len(self.frames)} frames exceed max_bytes={self.max_bytes}",
                )
            self.frames = np.concatenate([self.frames, np.empty_like(self.frames)])
        self.frames[self.count] = image
        self.count += 1

    def result(self) -> np.ndarray:
        kept = self.frames[: self.count]
        return kept if self.count >= 0.9 * len(self.frames) else kept.copy()


def _decode(
    source: VideoSource,
    target_fps: float | None,
    grayscale: bool,
    max_frames: int | None,
    limits: _Limits,
    truncation_tolerance: float,
) -> VideoClip:
    """read_video for constant-rate videos: frames counted onto the output clock, each output
    frame the source frame nearest its index (decoded frames not needed are not converted)."""
    path, warnings = source.path, []
    if not _valid_fps(source.header_fps):
        warnings.append("fps_fallback")
    header_count = source.frame_count
    if header_count is None:
        warnings.append("frame_count_unknown")
    if source.width and source.height:
        limits.check(path, source.width, source.height)
    source_fps = source.fps
    resample = target_fps is not None and abs(source_fps / target_fps - 1.0) > RESAMPLE_TOLERANCE
    fps = float(target_fps) if resample else source_fps
    ratio = source_fps / fps

    converter, buffer, decoded = _Converter(), None, 0
    source_size = output_size = None
    for frame in source.frames():
        if max_frames is not None and buffer is not None and buffer.count >= max_frames:
            break
        if _source_index(0 if buffer is None else buffer.count, ratio) > decoded:
            decoded += 1  # a source frame no output frame takes
            continue
        image = converter.rgb(frame)
        if buffer is None:
            source_size = image.shape[1], image.shape[0]
            output_size = limits.check(path, *source_size)
            expected = None if header_count is None else math.ceil(header_count / ratio - 1e-6)
            shape = (output_size[1], output_size[0], 1 if grayscale else 3)
            buffer = _FrameBuffer(path, expected, max_frames, shape, limits.max_bytes)
        elif (image.shape[1], image.shape[0]) != source_size:
            raise VideoError(
                path,
                "inconsistent_size",
                f"frame {decoded} is {image.shape[1]}x{image.shape[0]}, "
                f"the first was {source_size[0]}x{source_size[1]}",
            )
        image = _to_output(image, output_size, grayscale)
        decoded += 1
        while _source_index(buffer.count, ratio) < decoded and (
            max_frames is None or buffer.count < max_frames
        ):
            buffer.append(image)
    if buffer is None:
        if header_count is None:
            raise VideoError(path, "zero_frames", "the stream holds no frames")
        raise VideoError(
            path, "unreadable", f"no frame decodes although the header announces {header_count}"
        )
    reached_cap = max_frames is not None and buffer.count >= max_frames
    if not reached_cap and header_count is not None and decoded != header_count:
        margin = max(3, int(math.ceil(truncation_tolerance * header_count)))
        if decoded < header_count - margin:
            raise VideoError(
                path,
                "truncated",
                f"decoded {decoded} of the {header_count} frames the header announces",
            )
        warnings.append("frame_count_mismatch")
    return VideoClip(
        frames=buffer.result(),
        fps=fps,
        source_fps=source_fps,
        num_source_frames=decoded,
        width=source_size[0],
        height=source_size[1],
        path=str(path),
        warnings=tuple(warnings),
    )


def _to_output(image: np.ndarray, size: tuple[int, int], grayscale: bool) -> np.ndarray:
    """An RGB frame scaled down to `size` (INTER_AREA) and made grey when asked."""
    if (image.shape[1], image.shape[0]) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if grayscale:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None]
    return image


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


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
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
    path: str | os.PathLike | VideoSource, fps: float = 25.0, max_side: int | None = 640
) -> Iterator[tuple[int, np.ndarray]]:
    """(output index, uint8 RGB frame) at `fps`, each the decoded frame nearest its time."""

    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    with open_video(path) as source:
        yield from _resampled(source, fps, max_side)


def _resampled(source: VideoSource, fps: float, max_side: int | None):
    period = 1.0 / fps
    emitted = 0
    previous: tuple[float, np.ndarray] | None = None
    size = None
    converter = _Converter()
    for frame in source.frames():
        if frame.time is None:
            continue
        if size is None:
            size = scaled_size(frame.width, frame.height, max_side)
        image = converter.rgb(frame, size)
        if previous is not None:
            # Output times before the midpoint of two decoded frames take the earlier one.
            middle = (previous[0] + frame.time) / 2.0
            while emitted * period < middle:
                yield emitted, previous[1]
                emitted += 1
        previous = (float(frame.time), image)
    if previous is None:
        raise VideoError(source.path, "zero_frames", "the video stream holds no frames")
    rate = source.stream.average_rate
    frame_duration = float(1.0 / rate) if rate else period
    end = previous[0] + frame_duration
    while emitted * period < end - period / 2.0 or emitted == 0:
        yield emitted, previous[1]
        emitted += 1
