"""Streaming decode (timestamps, downscaling, audio-only files) and long-video transcription:
windows that cover every frame once, gaps where the face is lost, words in time order."""

import numpy as np
import pytest

from data_prep.video import VideoError, _rotated, read_video, stream_frames
from pipelines.artifacts.exports import released_models
from pipelines.inference.long_video import Windowing, runs, windows


def write_video(path, frames, times_ms=None, fps=25, rotation=0):
    """Encodes RGB frames with PyAV; `times_ms` gives each frame's presentation time and
    `rotation` the display rotation (degrees counter-clockwise) that phones record."""
    import fractions

    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = times_ms[index] if times_ms is not None else round(index * 1000 / fps)
            frame.time_base = fractions.Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def levels(frames):
    return [int(round(f.mean() / 20)) for f in frames]


def test_variable_frame_rate_is_resampled_by_timestamps(tmp_path):
    images = [np.full((32, 48, 3), 20 * (i + 1), np.uint8) for i in range(5)]
    path = write_video(tmp_path / "vfr.mp4", images, times_ms=[0, 40, 80, 200, 240])
    got = [frame for _, frame in stream_frames(path, fps=25.0)]
    # 0, 40, 80 ms: their own frames; 120 ms is nearer 80, 160 nearer 200; 200, 240 their own.
    assert levels(got) == [1, 2, 3, 3, 4, 4, 5]
    clip = read_video(path, target_fps=25.0)  # preparation's reader takes the same frames
    assert levels(clip.frames) == [1, 2, 3, 3, 4, 4, 5]
    assert "variable_frame_rate" in clip.warnings and clip.fps == 25.0
    assert "variable_frame_rate" not in read_video(write_video(tmp_path / "c.mp4", images)).warnings


def test_large_frames_are_scaled_down_while_decoding(tmp_path):
    images = [np.full((720, 1280, 3), 100, np.uint8) for _ in range(3)]
    path = write_video(tmp_path / "hd.mp4", images)
    shapes = {frame.shape for _, frame in stream_frames(path, fps=25.0, max_side=640)}
    assert shapes == {(360, 640, 3)}


def test_streamed_frames_equal_the_whole_clip_reader(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 80, 3), np.uint8) for _ in range(12)]
    path = write_video(tmp_path / "same.mp4", images)
    streamed = np.stack([frame for _, frame in stream_frames(path, fps=25.0)])
    whole = read_video(path, target_fps=25.0).frames
    assert streamed.shape == whole.shape
    assert np.abs(streamed.astype(int) - whole.astype(int)).mean() < 1.0


def test_an_audio_only_file_has_its_own_reason(tmp_path):
    from data_prep.synthetic.speech import write_wav

    path = write_wav((np.sin(np.arange(8000) * 0.1) * 5000).astype(np.int16), tmp_path / "a.wav")
    with pytest.raises(VideoError) as streamed:
        next(iter(stream_frames(path)))
    with pytest.raises(VideoError) as whole:
        read_video(path)
    assert streamed.value.reason == whole.value.reason == "audio_only"
    assert "a.wav" in str(whole.value)


def test_rotation_metadata_is_honoured_by_both_readers(tmp_path):
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :32] = 255  # the left half white
    path = write_video(tmp_path / "phone.mp4", [image] * 3, rotation=90)
    streamed = next(iter(stream_frames(path)))[1]
    whole = read_video(path).frames[0]
    for frame in (streamed, whole):
        # Turned a quarter counter-clockwise, as shown: upright 64 x 32, the white half below.
        assert frame.shape == (64, 32, 3)
        assert frame[-8:].mean() > 200 and frame[:8].mean() < 50


def test_rotation_turns_counter_clockwise():
    image = np.arange(6).reshape(2, 3)
    assert _rotated(image, 90).tolist() == [[2, 5], [1, 4], [0, 3]]
    assert _rotated(image, -90).tolist() == _rotated(image, 270).tolist()
    assert _rotated(image, 0) is image


@pytest.mark.parametrize("count", [1, 7, 10, 23, 24, 25])
def test_windows_cover_every_frame_and_mark_the_last(count):
    frames = [(i, np.full((1, 1, 1), i)) for i in range(count)]
    got = list(windows(frames, size=10, hop=7))
    assert [last for *_, last in got] == [False] * (len(got) - 1) + [True]
    covered = sorted({int(f[0, 0, 0]) + 0 for _, w, _ in got for f in w})
    assert covered == list(range(count))
    for start, window, _ in got:
        assert int(window[0, 0, 0, 0]) == start and len(window) <= 10


def test_runs_of_true():
    assert runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    assert runs(np.zeros(3, bool)) == []


@pytest.mark.skipif("grid_s1" not in released_models(), reason="no grid_s1 release")
def test_a_long_video_is_read_in_windows_with_a_gap_where_the_face_is_gone(tmp_path, monkeypatch):
    from data_prep.synthetic.faces import write_synthetic_corpus
    from pipelines.inference.lipreading import VideoTranscriber
    from pipelines.inference.long_video import transcribe_long

    clips = write_synthetic_corpus(tmp_path / "faces", 3, seed=11)["clips"]
    parts = [read_video(clip["video"], target_fps=25.0).frames for clip in clips]
    blank = np.full((50, *parts[0].shape[1:]), 90, np.uint8)  # 2 s with no face
    frames = np.concatenate([parts[0], parts[1], blank, parts[2]])
    path = write_video(tmp_path / "long.mp4", list(frames))
    transcriber = VideoTranscriber("grid_s1", mode="attention", grammar=True)
    result = transcribe_long(path, transcriber, Windowing(window_seconds=3.0))
    assert result["num_frames"] == len(frames)
    gap_start = (len(parts[0]) + len(parts[1])) / 25.0
    (gap,) = [g for g in result["gaps"] if g["end"] - g["start"] > 1.0]
    assert abs(gap["start"] - gap_start) < 0.6 and abs(gap["end"] - (gap_start + 2.0)) < 0.6
    starts = [w["start"] for w in result["words"]]
    assert starts == sorted(starts) and len(starts) >= 6
    for word in result["words"]:
        middle = (word["start"] + word["end"]) / 2
        assert not gap["start"] + 0.2 < middle < gap["end"] - 0.2, word
    assert result["text"] == " ".join(w["word"] for w in result["words"])
    assert all(piece["text"] for piece in result["pieces"])
    # Batch transcription streams a long video the same way, and writes its subtitles.
    import json

    import pipelines.inference.long_video as long_video
    from pipelines.serving.batch import transcribe_many

    monkeypatch.setattr(long_video, "LONG_VIDEO_SECONDS", 5.0)
    output = tmp_path / "out" / "transcripts.jsonl"
    transcribe_many([str(path)], "grid_s1", output, mode="attention", subtitle_format="vtt")
    (record,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert record["gaps"] and record["pieces"] and record["num_frames"] == len(frames)
    assert (tmp_path / "out" / "long.vtt").read_text().startswith("WEBVTT")


def test_a_4k_clip_is_scaled_down_while_decoding(tmp_path):
    image = np.zeros((2160, 3840, 3), np.uint8)
    image[:, :1920] = 200
    path = write_video(tmp_path / "uhd.mp4", [image] * 4)
    with pytest.raises(VideoError) as refused:
        read_video(path)
    assert refused.value.reason == "too_large"
    clip = read_video(path, max_side=1280)
    assert clip.frames.shape == (4, 720, 1280, 3) and (clip.width, clip.height) == (3840, 2160)
    assert abs(int(clip.frames[0, 360, 600, 0]) - 200) < 8 and clip.frames[0, 360, 700, 0] < 8


def test_a_piece_of_face_shorter_than_the_exports_minimum_is_a_gap_not_a_guess(monkeypatch):
    """Inside a long video, a stretch of face too short for any sentence the export can say
    (its shortest_frames) is not read: the model would only guess."""
    from types import SimpleNamespace

    import pipelines.inference.long_video as long_video

    usable = np.zeros(100, bool)
    usable[10:25] = usable[40:80] = True  # 15 frames, under the minimum of 20; then 40
    frames = [(i / 25, np.full((2, 2, 1), i, np.uint8)) for i in range(100)]

    def track_and_crop(window, settings):
        seen = usable[window[:, 0, 0, 0].astype(int)]
        boxes = np.where(seen[:, None], 1.0, np.nan) * np.ones((len(window), 4))
        return window, SimpleNamespace(mouth_boxes=boxes, confidence=np.ones(len(window)))

    read = []

    def transcriber(crops, lengths):
        read.append(int(lengths[0]))
        return {"text": [b"w"], "alignments": np.zeros((1, 1, 1))}

    transcriber.settings = SimpleNamespace(target_fps=25.0)
    transcriber.export = SimpleNamespace(shortest_frames=20)
    monkeypatch.setattr(long_video, "stream_frames", lambda *_: iter(frames))
    monkeypatch.setattr(long_video, "track_and_crop", track_and_crop)
    monkeypatch.setattr(
        long_video,
        "timed_words",
        lambda _, text, __, crops, fps: [{"word": text, "start": 0.0, "end": len(crops) / fps}],
    )
    result = long_video.transcribe_long("v.mp4", transcriber, Windowing(window_seconds=10.0))
    assert read == [40]
    assert result["gaps"] == [{"start": 0.0, "end": 1.6}, {"start": 3.2, "end": 4.0}]
    assert [(p["start"], p["end"]) for p in result["pieces"]] == [(1.6, 3.2)]
