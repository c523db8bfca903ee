"""A video is opened once for everything read from it: its header, its frames and its sound,
in preparation and in every inference front door."""

import fractions

import av
import cv2
import numpy as np
import pytest

from data_prep import lipreading
from data_prep.corpora.transcripts import ClipSpec
from data_prep.synthetic.faces import render_clip
from data_prep.synthetic.speech import SAMPLE_RATE, synthesize_speech
from pipelines.artifacts.exports import released_models


def write_talking_face(path):
    """A synthetic talking face with its sound muxed into the same MP4 (no sidecar file)."""
    clip = render_clip("bin blue at f two now", seed=3)
    sound = synthesize_speech(clip, seed=3)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=int(clip.fps))
        video.height, video.width = clip.frames.shape[1:3]
        video.pix_fmt, video.bit_rate = "yuv420p", 4_000_000  # sharp: no block artefacts
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "mono"
        for index, image in enumerate(clip.frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, fractions.Fraction(1, int(clip.fps))
            container.mux(video.encode(frame))
        container.mux(video.encode())
        for start in range(0, len(sound), 1024):
            chunk = sound[None, start : start + 1024]
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, start
            frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return path, len(clip.frames), len(sound)


@pytest.fixture
def opened(monkeypatch):
    """The paths FFmpeg opened for reading, through PyAV or OpenCV, in order."""
    paths = []

    def counting(real):
        def opening(file, *args, **kwargs):
            paths.append(str(file))
            return real(file, *args, **kwargs)

        return opening

    monkeypatch.setattr(av, "open", counting(av.open))
    monkeypatch.setattr(cv2, "VideoCapture", counting(cv2.VideoCapture))
    return paths


def test_preparing_a_clip_with_its_sound_opens_the_file_once(tmp_path, opened):
    video, frames, samples = write_talking_face(tmp_path / "face.mp4")
    spec = ClipSpec("face", video, "bin blue at f two now", "bin blue at f two now")
    opened.clear()  # the writing
    result = lipreading.process_clip(spec, "test", lipreading.LipreadingSettings(audio=True))
    assert result.skip_reason is None, result.skip_detail
    assert result.crops.shape[0] == frames and len(result.audio) == samples
    assert np.abs(result.audio.astype(np.int32)).max() > 1000
    assert opened == [str(video)]


@pytest.mark.skipif("grid_s1" not in released_models(), reason="no grid_s1 release")
def test_transcribing_a_video_opens_it_once(tmp_path, opened):
    from pipelines.inference.lipreading import VideoTranscriber

    video, _, _ = write_talking_face(tmp_path / "face.mp4")
    transcriber = VideoTranscriber("grid_s1", mode="ctc_greedy")
    opened.clear()  # the writing
    result = transcriber.transcribe(video)
    assert len(result["text"].split()) >= 1
    assert opened == [str(video)]
