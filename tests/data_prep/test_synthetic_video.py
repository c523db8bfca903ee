"""Tests for the synthetic talking faces in data_prep.synthetic.faces."""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_prep.corpora.grid import GRID_GRAMMAR, grid_sentence_id
from data_prep.synthetic import faces as sv

SENTENCES = (
    "bin blue at f two now",
    "place red by m zero please",
    "set white with o nine again",
    "lay green in a four soon",
)


@pytest.fixture(scope="module")
def clips():
    return [sv.render_clip(SENTENCES[seed % len(SENTENCES)], seed) for seed in range(6)]


@pytest.fixture(scope="module")
def cascade():
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    classifier = cv2.CascadeClassifier(path)
    assert not classifier.empty(), path
    return classifier


def read_frames(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def test_char_to_viseme_covers_charset():
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789' ":
        assert sv.char_to_viseme(ch).name in sv.VISEMES
    assert sv.char_to_viseme("M") == sv.char_to_viseme("m")
    assert sv.char_to_viseme("m").opening == 0.0
    assert sv.char_to_viseme("a").opening > sv.char_to_viseme("e").opening > 0
    assert sv.char_to_viseme("o").width < sv.char_to_viseme("e").width
    with pytest.raises(ValueError, match="no viseme"):
        sv.char_to_viseme("#")


def test_clip_shapes_and_dtypes(clips):
    clip = clips[0]
    t = clip.num_frames
    assert clip.frames.shape == (t, 288, 360, 3) and clip.frames.dtype == np.uint8
    assert clip.mouth_boxes.shape == (t, 4) and clip.mouth_boxes.dtype == np.float32
    assert clip.face_boxes.shape == (t, 4) and clip.face_boxes.dtype == np.float32
    assert clip.fps == 25.0 and clip.text == SENTENCES[0]
    # A GRID sentence at 2-4 frames per character lasts about 2-4 s.
    assert 50 <= t <= 110
    assert [w for _, _, w in clip.words] == SENTENCES[0].split()


def test_deterministic_per_seed():
    a = sv.render_clip("bin blue", seed=7)
    b = sv.render_clip("bin blue", seed=7)
    c = sv.render_clip("bin blue", seed=8)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.mouth_boxes, b.mouth_boxes)
    assert a.words == b.words
    assert a.frames.shape != c.frames.shape or not np.array_equal(a.frames, c.frames)


def test_mouth_opening_follows_text():
    closed = sv.render_clip("mmm bbb ppp", seed=3)
    open_ = sv.render_clip("aaa hah aaa", seed=3)
    assert closed.mouth_opening.max() == pytest.approx(0.0, abs=1e-6)
    assert open_.mouth_opening.max() > 0.3

    def box_height(clip):
        return clip.mouth_boxes[:, 3] - clip.mouth_boxes[:, 1]

    def face_height(clip):
        return clip.face_boxes[:, 3] - clip.face_boxes[:, 1]

    assert (box_height(open_) / face_height(open_)).max() > 1.5 * (
        box_height(closed) / face_height(closed)
    ).max()

    # The pixels agree: an open mouth shows a dark interior inside the lips' box.
    i = int(np.argmax(open_.mouth_opening))
    x0, y0, x1, y1 = open_.mouth_boxes[i].round().astype(int)
    grey = cv2.cvtColor(open_.frames[i], cv2.COLOR_RGB2GRAY)
    face = open_.face_boxes[i].round().astype(int)
    assert grey[y0:y1, x0:x1].min() < 0.5 * np.median(grey[face[1] : face[3], face[0] : face[2]])


def test_mouth_closed_at_start_and_end_and_moves_in_between(clips):
    for clip in clips:
        assert clip.mouth_opening[0] == pytest.approx(0.0, abs=1e-6)
        assert clip.mouth_opening[-1] == pytest.approx(0.0, abs=1e-6)
        opening = clip.mouth_opening
        # Open and close several times across a sentence, smoothly.
        crossings = np.sum(np.diff((opening > 0.1).astype(int)) != 0)
        assert crossings >= 4
        assert np.abs(np.diff(opening)).max() < 0.25


def test_boxes_inside_frame_and_face(clips):
    for clip in clips:
        height, width = clip.frames.shape[1:3]
        for boxes in (clip.mouth_boxes, clip.face_boxes):
            assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
            assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
            assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        m, f = clip.mouth_boxes, clip.face_boxes
        assert (m[:, 0] >= f[:, 0]).all() and (m[:, 1] >= f[:, 1]).all()
        assert (m[:, 2] <= f[:, 2]).all() and (m[:, 3] <= f[:, 3]).all()
        assert np.ptp(f[:, 0]) > 2.0, "the head should move"
        widths = f[:, 2] - f[:, 0]
        assert widths.max() / widths.min() > 1.02, "the head should change scale"


def test_lighting_and_noise_vary(clips):
    means = [clip.frames.reshape(clip.num_frames, -1).mean(axis=1) for clip in clips]
    assert max(np.ptp(m) for m in means) > 10.0
    first = clips[0].frames
    assert not np.array_equal(first[0], first[1])


def detection_rate(clips, cascade, step=1):
    """Fraction of frames where the largest Haar detection is centred in the true face box."""
    detected = total = 0
    for clip in clips:
        for frame, face in zip(clip.frames[::step], clip.face_boxes[::step], strict=True):
            grey = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
            found = cascade.detectMultiScale(
                grey, scaleFactor=1.1, minNeighbors=5, minSize=(48, 48)
            )
            total += 1
            if len(found) == 0:
                continue
            x, y, w, h = max(found, key=lambda r: r[2] * r[3])
            if face[0] <= x + w / 2 <= face[2] and face[1] <= y + h / 2 <= face[3]:
                detected += 1
    return detected / total


def test_haar_detects_the_face(clips, cascade):
    rate = detection_rate(clips, cascade, step=4)
    assert rate >= 0.95, f"Haar found the face on {rate:.1%} of frames"


@pytest.mark.slow
def test_haar_detects_the_face_on_every_frame_of_many_clips(cascade):
    many = [sv.render_clip(SENTENCES[seed % len(SENTENCES)], seed) for seed in range(100, 120)]
    rate = detection_rate(many, cascade)
    assert rate >= 0.95, f"Haar found the face on {rate:.1%} of frames"


def test_grey_output():
    clip = sv.render_clip("hi", seed=1, size=(160, 120), colour=False)
    assert clip.frames.shape[1:] == (120, 160, 3)
    assert np.array_equal(clip.frames[..., 0], clip.frames[..., 1])
    assert np.array_equal(clip.frames[..., 0], clip.frames[..., 2])


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_write_clip_reads_back(tmp_path, suffix):
    clip = sv.render_clip("set red", seed=2)
    path = sv.write_clip(clip, tmp_path / f"clip{suffix}")
    frames = read_frames(path)
    assert len(frames) == clip.num_frames
    assert frames[0].shape == clip.frames.shape[1:]
    decoded = cv2.cvtColor(frames[5], cv2.COLOR_BGR2RGB).astype(float)
    assert np.abs(decoded - clip.frames[5]).mean() < 12.0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"clip{suffix}"]


def test_write_clip_rejects_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        sv.write_clip(sv.render_clip("a", seed=0), tmp_path / "clip.mkv")


def test_grid_layout_corpus(tmp_path):
    summary = sv.write_synthetic_corpus(tmp_path, num_clips=3, seed=5)
    assert summary["num_clips"] == 3
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    ids = sorted(truth["clips"])
    assert sorted(p.stem for p in (tmp_path / "s1" / "video").glob("*.mp4")) == ids
    assert sorted(p.stem for p in (tmp_path / "s1" / "align").glob("*.align")) == ids
    for clip_id, record in truth["clips"].items():
        words = record["text"].split()
        assert len(words) == 6
        for word, slot in zip(words, GRID_GRAMMAR.values(), strict=True):
            assert word in slot
        assert grid_sentence_id(words) == clip_id
        lines = [line.split() for line in (tmp_path / "s1" / "align" / f"{clip_id}.align").open()]
        assert lines[0][2] == "sil" and lines[-1][2] == "sil"
        assert [w for _, _, w in lines if w != "sil"] == words
        starts = [int(s) for s, _, _ in lines]
        ends = [int(e) for _, e, _ in lines]
        assert starts[0] == 0 and ends[-1] == record["num_frames"] * 1000
        assert all(s % 1000 == 0 for s in starts)
        assert starts[1:] == ends[:-1]
        assert len(read_frames(tmp_path / record["video"])) == record["num_frames"]
        assert len(record["mouth_boxes"]) == len(record["face_boxes"]) == record["num_frames"]


def test_manifest_layout_corpus(tmp_path):
    vocabulary = ["hello", "world", "mama"]
    sv.write_synthetic_corpus(
        tmp_path, num_clips=2, seed=1, layout="manifest", vocabulary=vocabulary
    )
    with (tmp_path / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for row in rows:
        assert (tmp_path / row["video"]).is_file()
        assert set(row["transcript"].split()) <= set(vocabulary)


def test_corpus_deterministic_and_validated(tmp_path):
    a = sv.write_synthetic_corpus(tmp_path / "a", num_clips=2, seed=4)
    b = sv.write_synthetic_corpus(tmp_path / "b", num_clips=2, seed=4)
    assert [c["id"] for c in a["clips"]] == [c["id"] for c in b["clips"]]
    assert (tmp_path / "a" / "ground_truth.json").read_text() == (
        tmp_path / "b" / "ground_truth.json"
    ).read_text()
    with pytest.raises(ValueError, match="layout"):
        sv.write_synthetic_corpus(tmp_path / "c", 1, layout="lrs")
    with pytest.raises(ValueError, match="slot empty"):
        sv.write_synthetic_corpus(tmp_path / "d", 1, vocabulary=["bin", "blue"])


def test_generated_sound_track_follows_the_text(tmp_path):
    from data_prep.audio import read_audio
    from data_prep.synthetic.speech import character_formants

    summary = sv.write_synthetic_corpus(tmp_path / "with", 2, seed=3, audio=True)
    silent = sv.write_synthetic_corpus(tmp_path / "without", 2, seed=3)
    # The pictures do not change with the sound track.
    with_truth = json.loads(Path(summary["ground_truth"]).read_text())["clips"]
    assert with_truth == json.loads(Path(silent["ground_truth"]).read_text())["clips"]
    pairs = {character_formants(ch) for ch in "abcdefghijklmnopqrstuvwxyz0123456789'"}
    assert len(pairs) == 37  # every character sounds different
    for record in summary["clips"]:
        track = read_audio(record["video"])
        assert track.source.endswith(".wav") and track.sample_rate == 16000
        assert len(track.samples) == round(record["num_frames"] / 25.0 * 16000)
        # The first word's first character sounds at one of its two frequencies.
        start, end, word = with_truth[record["id"]]["words"][0]
        first = track.samples[int(start / 25 * 16000) : int((start + 2) / 25 * 16000)]
        spectrum = np.abs(np.fft.rfft(first.astype(np.float64) * np.hanning(len(first))))
        peak = np.fft.rfftfreq(len(first), 1 / 16000)[np.argmax(spectrum)]
        low, high = character_formants(word[0])
        assert min(abs(peak - low), abs(peak - high)) < 40, (word, peak, low, high)
