"""Audio tracks of face videos: decoded to 16 kHz mono int16 and aligned to the video frames.

PyAV decodes and resamples (FFmpeg ships inside its wheel; nothing is downloaded). A WAV or
FLAC file with the video's name beside it is used instead of the video's own track.

    track = read_audio("clip.mp4")                      # AudioTrack, raises AudioError
    samples, drift = align_to_video(track, num_frames=75, fps=25.0)
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import av
import numpy as np

from data_prep.errors import LipseqError
from data_prep.video import VideoSource

SAMPLE_RATE = 16000
SIDECAR_SUFFIXES = (".wav", ".flac")
# Machine-readable reasons a clip has no usable audio (the manifest lists them per clip).
AUDIO_PROBLEMS = ("no_audio", "unreadable_audio", "empty_audio")


class AudioError(LipseqError, ValueError):
    """A video's audio cannot be used; `reason` is one of AUDIO_PROBLEMS."""

    def __init__(self, path: str | Path, reason: str, detail: str = ""):
        detail = self.without_path(detail, path)
        super().__init__(f"{path}: {reason}{': ' + detail if detail else ''}")
        self.path, self.reason, self.detail = str(path), reason, detail


@dataclasses.dataclass
class AudioTrack:
    """Mono int16 samples [S] at `sample_rate`, starting `start_offset` seconds after the
    video stream starts (negative: before it), and where they came from."""

    samples: np.ndarray
    sample_rate: int
    start_offset: float
    source: str
    source_rate: int
    source_codec: str

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def audio_source(video_path: str | Path) -> Path:
    """The file whose audio a video's clip uses: a .wav/.flac beside it, else the video."""
    video_path = Path(video_path)
    for suffix in SIDECAR_SUFFIXES:
        sidecar = video_path.with_suffix(suffix)
        if sidecar != video_path and sidecar.is_file():
            return sidecar
    return video_path


def _start_seconds(stream) -> float:
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def read_audio(video: str | Path | VideoSource, sample_rate: int = SAMPLE_RATE) -> AudioTrack:
    """Decodes the clip's audio (see `audio_source`) to mono int16 at `sample_rate`; an open
    VideoSource lends its container, so the file is not opened again."""

    path = video.path if isinstance(video, VideoSource) else Path(video)
    source = audio_source(path)
    try:
        with _container(video, source) as container:
            return _decode_audio(container, source, source == path, sample_rate)
    except av.error.FFmpegError as error:
        raise AudioError(source, "unreadable_audio", str(error)) from error


def _container(video: str | Path | VideoSource, source: Path):
    if isinstance(video, VideoSource) and source == video.path:
        return contextlib.nullcontext(video.rewind())
    return av.open(str(source))


def _decode_audio(container, source: Path, own_track: bool, sample_rate: int) -> AudioTrack:
    streams = container.streams.audio
    if not streams:
        raise AudioError(source, "no_audio", "the file has no audio stream")
    stream = streams[0]
    video_start = (
        _start_seconds(container.streams.video[0])
        if own_track and container.streams.video
        else _start_seconds(stream)
    )
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    chunks = []
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
    for out in resampler.resample(None):  # what the resampler still holds
        chunks.append(out.to_ndarray().reshape(-1))
    samples = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    if not len(samples):
        raise AudioError(source, "empty_audio", "the audio stream decodes to no samples")
    codec, rate = stream.codec_context.name, int(stream.codec_context.sample_rate or 0)
    offset = _start_seconds(stream) - video_start
    return AudioTrack(samples, sample_rate, offset, str(source), rate, codec)


def align_to_video(track: AudioTrack, num_frames: int, fps: float) -> tuple[np.ndarray, float]:
    """Samples covering exactly the video's frames: sample 0 at frame 0's time, length
    num_frames / fps seconds (zeros where the audio is missing, cut where it runs over).

    Returns (int16 samples [round(num_frames / fps * rate)], drift seconds): how much longer
    the audio ran than the video, start offset included (negative: shorter).
    """
    rate = track.sample_rate
    wanted = int(round(num_frames / fps * rate))
    shift = int(round(track.start_offset * rate))
    samples = track.samples
    if shift > 0:
        samples = np.concatenate([np.zeros(shift, np.int16), samples])
    elif shift < 0:
        samples = samples[-shift:]
    drift = (len(samples) - wanted) / rate
    if len(samples) < wanted:
        samples = np.concatenate([samples, np.zeros(wanted - len(samples), np.int16)])
    return samples[:wanted].astype(np.int16), round(drift, 4)
