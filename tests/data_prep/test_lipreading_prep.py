"""Lip-reading preparation end to end on synthetic corpora: records, manifest, resumability,
bad inputs with named skip reasons, and mouth-box accuracy against the rendered ground truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from data_prep import lipreading, records
from data_prep.faces import box_iou
from data_prep.lipreading import (
    ClipSkipped,
    LipreadingSettings,
    corpus_clips,
    corrupt_frames,
    prepare_lipreading,
)
from data_prep.synthetic.faces import SyntheticClip, render_clip, write_clip, write_synthetic_corpus
from data_prep.video import detect_corrupt_frames, read_video

NUM_CLIPS = 5
SENTENCE = "bin blue at f two now"

FEATURES = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "text": tf.io.FixedLenFeature([], tf.string),
    "speaker": tf.io.FixedLenFeature([], tf.string),
    "frames": tf.io.FixedLenFeature([], tf.string),
    "num_frames": tf.io.FixedLenFeature([], tf.int64),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
    "channels": tf.io.FixedLenFeature([], tf.int64),
    "fps": tf.io.FixedLenFeature([], tf.float32),
    "roi_boxes": tf.io.VarLenFeature(tf.float32),
    "roi_confidence": tf.io.VarLenFeature(tf.float32),
    "words": tf.io.VarLenFeature(tf.string),
    "word_start": tf.io.VarLenFeature(tf.int64),
    "word_end": tf.io.VarLenFeature(tf.int64),
}


def read_records(output_dir: Path) -> dict[str, dict]:
    """Every record of a prepared directory by id: frames uint8 [T,H,W,C] and the other fields."""
    manifest = json.loads((output_dir / records.MANIFEST_NAME).read_text())
    examples = {}
    for entry in manifest["splits"].values():
        files = [str(output_dir / f["path"]) for f in entry["files"]]
        for raw in tf.data.TFRecordDataset(files):
            parsed = tf.io.parse_single_example(raw, FEATURES)
            ex = {
                k: tf.sparse.to_dense(v).numpy() if isinstance(v, tf.SparseTensor) else v.numpy()
                for k, v in parsed.items()
            }
            shape = [int(ex[k]) for k in ("num_frames", "height", "width", "channels")]
            ex["frames"] = tf.reshape(tf.io.decode_raw(parsed["frames"], tf.uint8), shape).numpy()
            ex["roi_boxes"] = ex["roi_boxes"].reshape(-1, 4)
            ex["words"] = [w.decode() for w in ex["words"]]
            for key in ("id", "text", "speaker"):
                ex[key] = ex[key].decode()
            examples[ex["id"]] = ex
    return examples


def shard_files(output_dir: Path) -> list[Path]:
    """The TFRecord shards in a prepared directory, by name."""
    return sorted(output_dir.glob("*.tfrecord"))


def mtimes(paths: list[Path]) -> dict[str, int]:
    """Modification times (ns) by file name."""
    return {p.name: p.stat().st_mtime_ns for p in paths}


def tmp_files(output_dir: Path) -> list[Path]:
    """Temporary files left anywhere under a directory."""
    return [p for p in output_dir.rglob("*") if ".tmp" in p.name]


def all_clips(manifest: dict) -> dict[str, dict]:
    """The kept clips of every split by id."""
    return {c["id"]: c for entry in manifest["splits"].values() for c in entry["clips"]}


def all_skipped(manifest: dict) -> dict[str, dict]:
    """The skipped clips of every split by id."""
    return {s["id"]: s for entry in manifest["splits"].values() for s in entry["skipped"]}


def prepare(root: Path, output_dir: Path, workers: int = 1, **settings) -> dict:
    """Prepares the GRID-layout corpus at `root`, one clip per shard unless told otherwise."""
    settings.setdefault("clips_per_shard", 1)
    return prepare_lipreading(
        corpus_clips("grid", root),
        output_dir,
        LipreadingSettings(**settings),
        workers=workers,
        dataset_name="grid",
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_corpus(root, NUM_CLIPS, seed=11)
    return root


@pytest.fixture(scope="module")
def truth(corpus) -> dict:
    return json.loads((corpus / "ground_truth.json").read_text())["clips"]


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory) -> tuple[Path, dict]:
    output_dir = tmp_path_factory.mktemp("prepared") / "lipnet"
    return output_dir, prepare(corpus, output_dir)


@pytest.fixture(scope="module")
def prepared_records(prepared) -> dict[str, dict]:
    return read_records(prepared[0])


@pytest.fixture
def copy_of_prepared(prepared, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(prepared[0], target)
    return target


@pytest.fixture
def count_calls(monkeypatch) -> list[str]:
    """Records the id of every clip process_clip is asked for (in-process, workers=1)."""
    calls: list[str] = []
    original = lipreading.process_clip

    def counting(spec, split, settings):
        calls.append(spec.id)
        return original(spec, split, settings)

    monkeypatch.setattr(lipreading, "process_clip", counting)
    return calls


def test_lipnet_records_parse_with_documented_features(prepared_records, truth):
    assert set(prepared_records) == set(truth)
    for clip_id, ex in prepared_records.items():
        expected = truth[clip_id]
        t = expected["num_frames"]
        assert ex["frames"].dtype == np.uint8 and ex["frames"].shape == (t, 50, 100, 3)
        assert ex["num_frames"] == t and ex["fps"] == 25.0
        assert ex["text"] == expected["text"] and ex["speaker"] == "s1"
        assert ex["roi_boxes"].shape == (t, 4) and np.isfinite(ex["roi_boxes"]).all()
        assert ex["roi_confidence"].shape == (t,)
        assert ((ex["roi_confidence"] > 0) & (ex["roi_confidence"] <= 1)).all()
        assert ex["words"] == [w for _, _, w in expected["words"]]
        assert ex["word_start"].tolist() == [s for s, _, _ in expected["words"]]
        assert ex["word_end"].tolist() == [e for _, e, _ in expected["words"]]
        assert ex["frames"].std() > 10, "crops are not blank"


def test_stored_crops_are_the_crops_of_the_stored_boxes(prepared_records, corpus, truth):
    from data_prep.mouth import crop_mouths

    clip_id = sorted(prepared_records)[0]
    ex = prepared_records[clip_id]
    frames = read_video(corpus / truth[clip_id]["video"]).frames
    np.testing.assert_array_equal(crop_mouths(frames, ex["roi_boxes"], "lipnet"), ex["frames"])


def test_gray96_records(corpus, truth, tmp_path):
    manifest = prepare(corpus, tmp_path / "gray", preset="gray96", clips_per_shard=64)
    examples = read_records(tmp_path / "gray")
    assert len(examples) == NUM_CLIPS and manifest["frame_shape"] == [96, 96, 1]
    for clip_id, ex in examples.items():
        t = truth[clip_id]["num_frames"]
        assert ex["frames"].dtype == np.uint8 and ex["frames"].shape == (t, 96, 96, 1)
        assert ex["channels"] == 1 and ex["height"] == ex["width"] == 96
    assert len(manifest["normalisation"]["mean"]) == len(manifest["normalisation"]["std"]) == 1
    assert manifest["settings"]["preset"] == "gray96"


def test_manifest_counts_settings_and_checksums(prepared, truth):
    output_dir, manifest = prepared
    assert manifest["task"] == "lipreading" and manifest["dataset"] == "grid"
    assert manifest["settings"] == LipreadingSettings(clips_per_shard=1).to_dict()
    assert manifest["frame_encoding"] == "raw_uint8" and manifest["frame_shape"] == [50, 100, 3]
    assert manifest["version"] and manifest["created"]
    splits = manifest["splits"]
    assert sum(e["num_examples"] for e in splits.values()) == NUM_CLIPS
    assert sum(e["num_frames"] for e in splits.values()) == sum(
        c["num_frames"] for c in truth.values()
    )
    assert manifest["skipped_by_reason"] == {}
    assert all(e["skipped"] == [] and e["num_skipped"] == 0 for e in splits.values())
    listed = {f["path"]: f for e in splits.values() for f in e["files"]}
    assert sorted(listed) == [p.name for p in shard_files(output_dir)]
    assert len(listed) == NUM_CLIPS, "one clip per shard"
    for name, entry in listed.items():
        assert entry["sha256"] == records.sha256_file(output_dir / name)
        sidecar = json.loads((output_dir / f"{name}.json").read_text())
        assert sidecar["sha256"] == entry["sha256"]
    # The rates are the counts above over the run's seconds (the seconds rounded to 0.01 s).
    timing = manifest["timing"]
    frames, slack = sum(e["num_frames"] for e in splits.values()), 0.006 / timing["seconds"]
    assert timing["frames_per_second"] == pytest.approx(frames / timing["seconds"], rel=slack)
    assert timing["clips_per_second"] == pytest.approx(
        NUM_CLIPS / timing["seconds"], rel=slack, abs=0.006
    )


def test_manifest_normalisation_matches_train_crops(prepared, prepared_records):
    _, manifest = prepared
    train_ids = [c["id"] for c in manifest["splits"]["train"]["clips"]]
    assert train_ids, "the fixture corpus needs train clips"
    pixels = (
        np.concatenate([prepared_records[i]["frames"].reshape(-1, 3) for i in train_ids]).astype(
            np.float64
        )
        / 255.0
    )
    norm = manifest["normalisation"]
    assert norm["computed_on"] == "train" and len(norm["mean"]) == len(norm["std"]) == 3
    np.testing.assert_allclose(norm["mean"], pixels.mean(0), atol=1e-5)
    np.testing.assert_allclose(norm["std"], pixels.std(0), atol=1e-5)
    assert all(0.05 < m < 0.95 for m in norm["mean"]) and all(0.02 < s < 0.5 for s in norm["std"])


def test_manifest_roi_stats_per_clip(prepared, truth):
    clips = all_clips(prepared[1])
    assert set(clips) == set(truth)
    for clip_id, entry in clips.items():
        roi = entry["roi"]
        assert entry["num_frames"] == roi["num_frames"] == roi["frames_with_box"]
        assert roi["flags"] == [] and roi["lost_frames"] == 0 and roi["detected_frames"] >= 3
        assert 0 < roi["confidence_min"] <= roi["confidence_mean"] <= 1
        assert 0 < roi["centre_x_mean"] < 360 and 0 < roi["centre_y_mean"] < 288
        assert roi["width_mean"] > 10 and roi["height_mean"] > 5
        assert entry["text"] == truth[clip_id]["text"]


def test_contact_sheet_written(prepared):
    output_dir, manifest = prepared
    sheet = cv2.imread(str(output_dir / manifest["contact_sheet"]))
    assert sheet is not None and sheet.ndim == 3
    assert sheet.shape[0] >= NUM_CLIPS * 100 and sheet.shape[1] >= 8 * 200
    assert sheet.std() > 30 and (sheet < 250).mean() > 0.5, "the sheet shows crops"


def test_rerun_with_everything_finished_processes_nothing(corpus, copy_of_prepared, count_calls):
    before = mtimes(shard_files(copy_of_prepared))
    manifest = prepare(corpus, copy_of_prepared)
    assert count_calls == []
    assert mtimes(shard_files(copy_of_prepared)) == before
    assert sum(e["num_examples"] for e in manifest["splits"].values()) == NUM_CLIPS


@pytest.mark.parametrize("damage", ["delete_shard_and_sidecar", "corrupt_shard", "drop_sidecar"])
def test_rerun_redoes_only_the_damaged_shard(
    corpus, prepared, copy_of_prepared, count_calls, damage
):
    shards = shard_files(copy_of_prepared)
    victim = shards[2]
    original_sha = records.sha256_file(victim)
    sidecar = victim.with_name(victim.name + ".json")
    clip_ids = json.loads(sidecar.read_text())["clip_ids"]
    if damage == "delete_shard_and_sidecar":
        victim.unlink()
        sidecar.unlink()
    elif damage == "corrupt_shard":
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    else:
        sidecar.unlink()
    others = [p for p in shards if p != victim]
    before = mtimes(others)
    manifest = prepare(corpus, copy_of_prepared)
    assert count_calls == clip_ids
    assert mtimes(others) == before
    assert records.sha256_file(victim) == original_sha, "the redone shard is identical"
    assert sidecar.is_file() and not tmp_files(copy_of_prepared)
    assert manifest["splits"] == prepared[1]["splits"]


def test_interrupted_run_leaves_no_partial_shard_and_resumes(corpus, tmp_path, monkeypatch):
    output_dir = tmp_path / "interrupted"
    original = lipreading.process_clip
    calls: list[str] = []

    def killed_on_third_clip(spec, split, settings):
        calls.append(spec.id)
        if len(calls) == 3 and not resumed:
            raise RuntimeError("killed")
        return original(spec, split, settings)

    monkeypatch.setattr(lipreading, "process_clip", killed_on_third_clip)
    resumed = False
    with pytest.raises(RuntimeError, match="killed"):
        prepare(corpus, output_dir)
    finished = shard_files(output_dir)
    assert len(finished) == 2 and not tmp_files(output_dir)
    done = {
        clip_id
        for p in finished
        for clip_id in json.loads(p.with_name(p.name + ".json").read_text())["clip_ids"]
    }
    assert done == set(calls[:2])
    assert not (output_dir / records.MANIFEST_NAME).exists()

    resumed = True
    calls.clear()
    manifest = prepare(corpus, output_dir)
    assert len(calls) == NUM_CLIPS - 2 and not set(calls) & done
    assert len(shard_files(output_dir)) == NUM_CLIPS and not tmp_files(output_dir)
    assert sum(e["num_examples"] for e in manifest["splits"].values()) == NUM_CLIPS


def test_two_workers_give_the_same_records(corpus, prepared, tmp_path):
    output_dir = tmp_path / "two_workers"
    manifest = prepare(corpus, output_dir, workers=2)
    one = {p.name: records.sha256_file(p) for p in shard_files(prepared[0])}
    two = {p.name: records.sha256_file(p) for p in shard_files(output_dir)}
    assert one == two
    assert manifest["splits"] == prepared[1]["splits"]
    assert not tmp_files(output_dir)


# Bad inputs: a GRID-layout corpus with two good clips beside one clip per kind of damage.


def align_text(clip: SyntheticClip, words: list[str] | None = None) -> str:
    """A GRID .align for the clip (times in 1/1000 frame), optionally with other words."""
    spans = (
        clip.words
        if words is None
        else [(s, e, w) for (s, e, _), w in zip(clip.words, words, strict=True)]
    )
    lines = [f"0 {spans[0][0] * 1000} sil"] + [f"{s * 1000} {e * 1000} {w}" for s, e, w in spans]
    return "\n".join(lines) + "\n"


def write_frames(
    path: Path, frames: np.ndarray, fps: float = 25.0, fourcc: str = "MJPG", color: bool = True
) -> Path:
    """Writes RGB (or gray [T,H,W]) frames with OpenCV."""
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height), color
    )
    assert writer.isOpened(), path
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if color else frame)
    writer.release()
    return path


def wall_frames(count: int, height: int = 288, width: int = 360, seed: int = 0) -> np.ndarray:
    """A textured wall with sensor noise, RGB [T,H,W,3]: no face anywhere."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(90, 170, size=(6, 8, 3)).astype(np.float32)
    wall = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 6, size=(count, height, width, 3))
    return np.clip(wall[None] + noise, 0, 255).astype(np.uint8)


class BadCorpus:
    """Builds s1/video/<id>.<ext> + s1/align/<id>.align files under a root."""

    def __init__(self, root: Path):
        self.video_dir = root / "s1" / "video"
        self.align_dir = root / "s1" / "align"
        self.video_dir.mkdir(parents=True)
        self.align_dir.mkdir(parents=True)

    def video(self, clip_id: str, suffix: str = ".mp4") -> Path:
        return self.video_dir / f"{clip_id}{suffix}"

    def align(self, clip_id: str, text: str) -> None:
        (self.align_dir / f"{clip_id}.align").write_text(text)


# id -> the reason it must be skipped with (reasons come from the readers, video and tracking).
EXPECTED_SKIPS = {
    "truncated": "truncated",
    "zerobyte": "empty_file",
    "garbage": "unreadable",
    "badcodec": "unreadable",
    "garbled": "unreadable",
    "noframes": "zero_frames",
    "wall": "no_face",
    "facelost": "face_lost_too_long",
    "tiny": "too_small",
    # 2000x1500 frames are scaled to 1280 pixels while decoding, no longer refused as
    # too_large: the clip then fails on its 2 frames.
    "huge": "too_few_frames",
    "noalign": "missing_alignment",
    "emptyalign": "empty_alignment",
    "outofset": "out_of_set_characters",
    "mostlygrey": "corrupt_frames",
}
EXPECTED_KEPT = ("good01", "good02", "fps60", "fps12", "greyvideo", "greystart")
DAMAGED_AT_START = 12


@pytest.fixture(scope="module")
def bad_corpus(tmp_path_factory) -> tuple[Path, dict[str, SyntheticClip]]:
    root = tmp_path_factory.mktemp("bad")
    c = BadCorpus(root)
    base = render_clip(SENTENCE, 1)
    clips = {
        "good01": base,
        "good02": render_clip("place red by m zero please", 2),
        "fps60": render_clip(SENTENCE, 3, fps=60.0),
        "fps12": render_clip(SENTENCE, 4, fps=12.0),
        "greyvideo": render_clip(SENTENCE, 5, colour=False),
    }
    for clip_id in ("good01", "good02", "fps60", "fps12"):
        write_clip(clips[clip_id], c.video(clip_id))
        c.align(clip_id, align_text(clips[clip_id]))
    grey = clips["greyvideo"].frames[..., 0]
    write_frames(c.video("greyvideo", ".avi"), grey, color=False)
    c.align("greyvideo", align_text(clips["greyvideo"]))
    for clip_id in EXPECTED_SKIPS:
        c.align(clip_id, align_text(base))

    full = write_clip(base, c.video("truncated", ".avi"))
    full.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    c.video("zerobyte").write_bytes(b"")
    c.video("garbage").write_bytes(np.random.default_rng(1).bytes(20000))
    avi = write_clip(base, c.video("badcodec", ".avi"))
    avi.write_bytes(avi.read_bytes().replace(b"MJPG", b"QQQQ"))
    mp4 = bytearray(write_clip(base, c.video("garbled")).read_bytes())
    start, end = mp4.find(b"mdat") + 8, mp4.find(b"moov")
    assert 8 < start < end, "mp4v from OpenCV puts mdat before moov"
    mp4[start:end] = np.random.default_rng(2).bytes(end - start)
    c.video("garbled").write_bytes(bytes(mp4))
    write_frames(c.video("noframes", ".avi"), np.zeros((0, 48, 64, 3), np.uint8))
    write_frames(c.video("wall", ".mp4"), wall_frames(40), fourcc="mp4v")
    lost = base.frames.copy()
    lost[15:65] = wall_frames(50, seed=1)
    write_frames(c.video("facelost"), lost, fourcc="mp4v")
    write_frames(c.video("tiny", ".avi"), np.full((10, 16, 16, 3), 128, np.uint8))
    write_frames(c.video("huge", ".avi"), np.full((2, 1500, 2000, 3), 100, np.uint8))
    damaged = base.frames.copy()
    damaged[:DAMAGED_AT_START] = 128
    write_frames(c.video("greystart"), damaged, fourcc="mp4v")
    c.align("greystart", align_text(base))
    damaged[: len(damaged) // 2] = 128
    write_frames(c.video("mostlygrey"), damaged, fourcc="mp4v")
    for clip_id in ("noalign", "emptyalign", "outofset"):
        write_clip(base, c.video(clip_id))
    (c.align_dir / "noalign.align").unlink()
    c.align("emptyalign", f"0 {base.num_frames * 1000} sil\n")
    c.align("outofset", align_text(base, ["bin", "blue", "at", "f", "two", "now!"]))
    return root, clips


@pytest.fixture(scope="module")
def bad_prepared(bad_corpus, tmp_path_factory) -> tuple[Path, dict]:
    output_dir = tmp_path_factory.mktemp("bad_prepared")
    return output_dir, prepare(bad_corpus[0], output_dir, clips_per_shard=64)


def test_bad_inputs_do_not_stop_the_run(bad_prepared):
    output_dir, manifest = bad_prepared
    assert sorted(all_clips(manifest)) == sorted(EXPECTED_KEPT)
    assert sorted(all_skipped(manifest)) == sorted(EXPECTED_SKIPS)
    assert sum(manifest["skipped_by_reason"].values()) == len(EXPECTED_SKIPS)
    assert not tmp_files(output_dir) and (output_dir / records.MANIFEST_NAME).is_file()


@pytest.mark.parametrize("clip_id", sorted(EXPECTED_SKIPS))
def test_bad_input_skipped_with_named_reason(bad_prepared, clip_id):
    skipped = all_skipped(bad_prepared[1])
    assert clip_id in skipped, f"{clip_id} was not skipped"
    assert skipped[clip_id]["reason"] == EXPECTED_SKIPS[clip_id], skipped[clip_id]
    assert skipped[clip_id]["detail"]


@pytest.mark.parametrize(("clip_id", "source_fps"), [("fps60", 60.0), ("fps12", 12.0)])
def test_unusual_frame_rate_resampled_to_25_and_kept(bad_prepared, bad_corpus, clip_id, source_fps):
    examples = read_records(bad_prepared[0])
    ex = examples[clip_id]
    source_frames = bad_corpus[1][clip_id].num_frames
    assert ex["fps"] == 25.0
    assert abs(ex["num_frames"] - source_frames * 25.0 / source_fps) <= 2
    assert all_clips(bad_prepared[1])[clip_id]["roi"]["frames_with_box"] == ex["num_frames"]
    assert ex["word_end"].max() <= ex["num_frames"] + 1


def test_grayscale_video_kept(bad_prepared):
    ex = read_records(bad_prepared[0])["greyvideo"]
    crops = ex["frames"].astype(int)
    assert crops.shape[1:] == (50, 100, 3) and ex["num_frames"] > 50
    assert np.abs(crops[..., 0] - crops[..., 1]).max() <= 2, "grey in, grey crops out"
    assert all_clips(bad_prepared[1])["greyvideo"]["roi"]["frames_with_box"] == ex["num_frames"]


def test_damaged_opening_frames_kept_with_a_warning(bad_prepared):
    entry = all_clips(bad_prepared[1])["greystart"]
    assert f"corrupt_frames:{DAMAGED_AT_START}" in entry["warnings"]
    assert entry["roi"]["frames_with_box"] == entry["num_frames"]


@pytest.mark.parametrize("start", [0, 1, 2, 7])
@pytest.mark.parametrize("length", [3, 4, 12])
def test_sampled_corrupt_check_finds_whole_damaged_runs(bad_corpus, start, length):
    frames = bad_corpus[1]["good01"].frames[:40].copy()
    frames[start : start + length] = 128
    frames[30] = 128
    expected = detect_corrupt_frames(frames)
    assert expected[start : start + length].all()
    np.testing.assert_array_equal(corrupt_frames(frames), expected)


def test_out_of_set_transcript_kept_when_asked(bad_corpus, tmp_path):
    specs = [s for s in corpus_clips("grid", bad_corpus[0]) if s.id == "outofset"]
    settings = LipreadingSettings(keep_out_of_set=True)
    manifest = prepare_lipreading(specs, tmp_path / "kept", settings)
    assert manifest["settings"]["keep_out_of_set"] is True
    entry = all_clips(manifest)["outofset"]
    assert entry["text"] == SENTENCE
    assert any(w.startswith("out_of_set_characters") for w in entry["warnings"])
    assert manifest["skipped_by_reason"] == {}


def test_strict_mode_raises_naming_file_and_reason(bad_corpus, tmp_path):
    specs = [s for s in corpus_clips("grid", bad_corpus[0]) if s.id in ("good01", "zerobyte")]
    with pytest.raises(ClipSkipped) as excinfo:
        prepare_lipreading(specs, tmp_path / "strict", LipreadingSettings(strict=True))
    error = excinfo.value
    path = str(bad_corpus[0] / "s1" / "video" / "zerobyte.mp4")
    assert error.reason == "empty_file" and error.clip_id == "zerobyte" and error.path == path
    assert path in str(error) and "empty_file" in str(error)
    assert not (tmp_path / "strict" / records.MANIFEST_NAME).exists()


# Accuracy of the stored mouth boxes (track_mouth's output) against the rendered lips.


def box_errors(prepared_records, truth) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame centre error (fraction of the true mouth width) and IoU, over all clips."""
    errors, ious = [], []
    for clip_id, ex in prepared_records.items():
        boxes = ex["roi_boxes"]
        true = np.asarray(truth[clip_id]["mouth_boxes"], np.float32)
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        true_centre = (true[:, :2] + true[:, 2:]) / 2
        errors.append(np.hypot(*(centre - true_centre).T) / (true[:, 2] - true[:, 0]))
        ious.append([box_iou(b, t[None])[0] for b, t in zip(boxes, true, strict=True)])
    return np.concatenate(errors), np.concatenate(ious)


def test_mouth_centre_accuracy(prepared_records, truth):
    errors, _ = box_errors(prepared_records, truth)
    assert np.median(errors) <= 0.05, f"median centre error {np.median(errors):.3f} mouth widths"


def test_mouth_box_iou(prepared_records, truth):
    _, ious = box_errors(prepared_records, truth)
    assert ious.mean() >= 0.6, f"mean IoU {ious.mean():.3f}"


@pytest.mark.parametrize(
    "failure,skipped",
    [(OSError("Input/output error"), True), (TypeError("a bug in the code"), False)],
)
def test_decoder_failures_skip_the_clip_but_bugs_are_raised(
    monkeypatch, tmp_path, failure, skipped
):
    from data_prep.corpora.transcripts import ClipSpec

    def failing(*args, **kwargs):
        raise failure

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
    for _ in range(3):
        writer.write(np.full((48, 64, 3), 90, np.uint8))
    writer.release()
    monkeypatch.setattr(lipreading, "read_video", failing)  # the clip core's decoder
    spec = ClipSpec("clip", video, "bin blue", "bin blue")
    if skipped:
        result = lipreading.process_clip(spec, "train", lipreading.LipreadingSettings())
        assert result.skip_reason == "unreadable" and "Input/output error" in result.skip_detail
    else:
        with pytest.raises(TypeError, match="a bug in the code"):
            lipreading.process_clip(spec, "train", lipreading.LipreadingSettings())


def test_audio_is_stored_aligned_and_clips_without_it_keep_their_video(corpus, tmp_path):
    import wave

    from data_prep.records import parse_clip

    # A copy of the corpus where one clip has a WAV track beside its video (1 kHz tone, a
    # second longer than the video) and the others have no audio at all.
    root = tmp_path / "corpus"
    shutil.copytree(corpus, root)
    videos = sorted((root / "s1" / "video").glob("*.mp4"))
    with_sound = videos[0]
    frames = cv2.VideoCapture(str(with_sound)).get(cv2.CAP_PROP_FRAME_COUNT)
    seconds = frames / 25.0 + 1.0
    t = np.arange(int(seconds * 8000)) / 8000
    tone = (10000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    with wave.open(str(with_sound.with_suffix(".wav")), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(tone.tobytes())
    output_dir = tmp_path / "prepared"
    manifest = prepare(root, output_dir, audio=True, clips_per_shard=8)
    clips = all_clips(manifest)
    assert set(clips) == {v.stem for v in videos}  # every clip kept for video
    assert clips[with_sound.stem]["audio"]["drift_seconds"] == pytest.approx(1.0, abs=0.02)
    for video in videos[1:]:
        assert clips[video.stem]["audio_problem"] == "no_audio"
    audio = manifest["audio"]
    assert audio["clips_with_audio"] == 1 and audio["clips_without_audio"] == {
        "no_audio": len(videos) - 1
    }
    parsed = {}
    for path in shard_files(output_dir):
        for raw in tf.data.TFRecordDataset(str(path)):
            clip = parse_clip(raw)
            parsed[clip["id"].numpy().decode()] = clip
    sound = parsed[with_sound.stem]
    num_frames = int(sound["frames"].shape[0])
    assert int(sound["sample_rate"]) == 16000
    assert sound["audio"].shape == (round(num_frames / 25.0 * 16000),)
    samples = sound["audio"].numpy().astype(np.float64)
    peak = np.fft.rfftfreq(len(samples), 1 / 16000)[np.argmax(np.abs(np.fft.rfft(samples)))]
    assert abs(peak - 1000.0) < 5.0
    assert parsed[videos[1].stem]["audio"].shape == (0,)
    assert int(parsed[videos[1].stem]["sample_rate"]) == 0


def test_settings_differences_name_what_changes_a_clip_and_nothing_else():
    prepared = lipreading.LipreadingSettings(audio=True, clips_per_shard=8).to_dict()
    lips_only = lipreading.LipreadingSettings(audio=False, clips_per_shard=64, strict=True)
    assert lips_only.differences(prepared) == []  # sound extra, handling only: both serve
    assert lipreading.LipreadingSettings(audio=True).differences({**prepared, "audio": False}) == [
        "audio=True (prepared with False)"
    ]
    older = {k: v for k, v in prepared.items() if k != "max_side"}
    assert lipreading.LipreadingSettings(max_side=640, audio=True).differences(older) == []
    assert lipreading.LipreadingSettings(preset="gray80", audio=True).differences(prepared) == [
        "preset='gray80' (prepared with 'lipnet')"
    ]
