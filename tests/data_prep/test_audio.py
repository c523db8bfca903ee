"""Audio tracks: decoding to 16 kHz mono, sidecar files, alignment to the frames, bad input."""

import wave

import cv2
import numpy as np
import pytest

from data_prep.audio import AudioError, AudioTrack, align_to_video, audio_source, read_audio


def _tone(seconds: float, rate: int, frequency: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.5 * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    return np.repeat(mono[:, None], channels, axis=1)


def _dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def _silent_video(path, frames: int = 25, fps: float = 25.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i * 5 % 255, np.uint8))
    writer.release()
    return path


def _video_with_audio(path, seconds: float = 1.0, fps: int = 25, frequency: float = 440.0):
    """An MPEG-4 video with an AAC track (44.1 kHz stereo tone), encoded by PyAV."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        audio.layout = "stereo"
        for i in range(int(seconds * fps)):
            image = np.full((48, 64, 3), i * 7 % 255, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        tone = _tone(seconds, 44100, frequency, channels=2)
        for start in range(0, len(tone), 1024):
            # Packed s16 stereo: samples interleaved L, R, L, R.
            chunk = np.ascontiguousarray(tone[start : start + 1024].reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
            frame.sample_rate, frame.pts = 44100, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)
    return path


def test_a_videos_audio_track_becomes_16k_mono_aligned_to_its_frames(tmp_path):
    video = _video_with_audio(tmp_path / "clip.mp4")
    track = read_audio(video)
    assert track.sample_rate == 16000 and track.samples.dtype == np.int16
    assert (track.source_codec, track.source_rate) == ("aac", 44100)
    assert abs(track.start_offset) < 0.05
    assert abs(track.seconds - 1.0) < 0.1  # encoder priming and padding at most
    assert abs(_dominant_frequency(track.samples, 16000) - 440.0) < 5.0
    samples, drift = align_to_video(track, num_frames=25, fps=25.0)
    assert samples.shape == (16000,) and abs(drift) < 0.1


def test_a_wav_beside_the_video_is_used_instead(tmp_path):
    video = _silent_video(tmp_path / "clip.avi")
    with wave.open(str(tmp_path / "clip.wav"), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(_tone(0.5, 48000, 1000.0, channels=2).tobytes())
    assert audio_source(video) == tmp_path / "clip.wav"
    track = read_audio(video)
    assert track.source.endswith("clip.wav") and track.source_rate == 48000
    assert len(track.samples) == 8000
    assert abs(_dominant_frequency(track.samples, 16000) - 1000.0) < 5.0


def test_no_audio_and_broken_audio_are_named(tmp_path):
    with pytest.raises(AudioError, match="no_audio") as missing:
        read_audio(_silent_video(tmp_path / "silent.avi"))
    assert missing.value.reason == "no_audio" and "silent.avi" in str(missing.value)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(AudioError) as broken:
        read_audio(garbage)
    assert broken.value.reason == "unreadable_audio" and "garbage.mp4" in str(broken.value)


def test_alignment_pads_late_audio_and_cuts_early_audio():
    ramp = np.arange(1, 1001, dtype=np.int16)  # 1,000 samples at 1 kHz: one second
    late = AudioTrack(ramp, 1000, 0.25, "x", 1000, "pcm")
    samples, drift = align_to_video(late, num_frames=25, fps=25.0)
    assert samples[:250].tolist() == [0] * 250 and samples[250:].tolist() == list(range(1, 751))
    assert drift == pytest.approx(0.25)
    early = AudioTrack(ramp, 1000, -0.1, "x", 1000, "pcm")
    samples, drift = align_to_video(early, num_frames=50, fps=25.0)  # two seconds of video
    assert samples[:900].tolist() == list(range(101, 1001)) and not samples[900:].any()
    assert drift == pytest.approx(-1.1)
