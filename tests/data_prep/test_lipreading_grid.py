"""Lip-reading preparation on real GRID s1 clips (H.264 re-encodes and MPEG-1 originals)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from data_prep import records
from data_prep.lipreading import LipreadingSettings, corpus_clips, prepare_lipreading
from data_prep.mouth import lips_present
from tests.data_prep.test_video import GRID_S1_DAMAGED

pytestmark = pytest.mark.needs_shared_data

EVERY = 30
LIP_SAMPLE_STEP = 5


def crops_by_id(output_dir: Path) -> dict[str, np.ndarray]:
    """The stored crops uint8 [T,H,W,C] of every record in a prepared directory."""
    manifest = json.loads((output_dir / records.MANIFEST_NAME).read_text())
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("id", "frames")}
    spec |= {
        k: tf.io.FixedLenFeature([], tf.int64)
        for k in ("num_frames", "height", "width", "channels")
    }
    out = {}
    for entry in manifest["splits"].values():
        for raw in tf.data.TFRecordDataset([str(output_dir / f["path"]) for f in entry["files"]]):
            ex = tf.io.parse_single_example(raw, spec)
            shape = [int(ex[k]) for k in ("num_frames", "height", "width", "channels")]
            frames = tf.reshape(tf.io.decode_raw(ex["frames"], tf.uint8), shape)
            out[ex["id"].numpy().decode()] = frames.numpy()
    return out


def kept_clips(manifest: dict) -> dict[str, dict]:
    """The kept clips of every split by id."""
    return {c["id"]: c for entry in manifest["splits"].values() for c in entry["clips"]}


def skipped_clips(manifest: dict) -> dict[str, dict]:
    """The skipped clips of every split by id."""
    return {s["id"]: s for entry in manifest["splits"].values() for s in entry["skipped"]}


def corrupt_warning(entry: dict) -> int:
    """The number of damaged frames a clip's manifest entry warns about (0 when none)."""
    counts = [
        int(w.split(":")[1]) for w in entry.get("warnings", []) if w.startswith("corrupt_frames:")
    ]
    return sum(counts)


@pytest.fixture(scope="module")
def grid_prepared(shared_data, tmp_path_factory) -> tuple[Path, dict, list[str]]:
    specs = corpus_clips("grid", shared_data / "grid")[::EVERY]
    output_dir = tmp_path_factory.mktemp("grid_prepared")
    manifest = prepare_lipreading(
        specs, output_dir, LipreadingSettings(), workers=2, dataset_name="grid"
    )
    return output_dir, manifest, [s.id for s in specs]


def test_every_sampled_clip_accounted_for(grid_prepared):
    _, manifest, ids = grid_prepared
    assert len(ids) >= 30
    kept, skipped = kept_clips(manifest), skipped_clips(manifest)
    assert sorted(kept.keys() | skipped.keys()) == sorted(ids)
    assert not set(skipped) - set(GRID_S1_DAMAGED), f"clean clips skipped: {skipped}"
    assert len(kept) >= 0.9 * len(ids)


def test_mouth_box_on_nearly_every_frame(grid_prepared):
    kept = kept_clips(grid_prepared[1])
    with_box = sum(c["roi"]["frames_with_box"] for c in kept.values())
    total = sum(c["num_frames"] for c in kept.values())
    assert total >= 70 * len(kept)
    assert with_box / total >= 0.99, f"box on {with_box}/{total} frames"
    assert all(c["roi"]["flags"] in ([], ["low_confidence"]) for c in kept.values())


def test_crops_show_lips(grid_prepared):
    crops = crops_by_id(grid_prepared[0])
    assert set(crops) == set(kept_clips(grid_prepared[1]))
    verdicts = [lips_present(c) for clip in crops.values() for c in clip[::LIP_SAMPLE_STEP]]
    assert len(verdicts) >= 400
    assert np.mean(verdicts) >= 0.98, f"lips in {sum(verdicts)}/{len(verdicts)} sampled crops"


def test_damaged_clips_flagged_or_warned_and_clean_ones_not(grid_prepared):
    _, manifest, ids = grid_prepared
    kept, skipped = kept_clips(manifest), skipped_clips(manifest)
    damaged = [i for i in ids if i in GRID_S1_DAMAGED]
    assert damaged, "the sample should hold a known damaged clip"
    for clip_id in damaged:
        if clip_id in skipped:
            assert skipped[clip_id]["reason"] == "corrupt_frames"
        else:
            assert corrupt_warning(kept[clip_id]) >= len(GRID_S1_DAMAGED[clip_id]), clip_id
    for clip_id in set(ids) - set(GRID_S1_DAMAGED):
        assert corrupt_warning(kept[clip_id]) == 0, clip_id


def test_grid_contact_sheet_and_manifest(grid_prepared):
    output_dir, manifest, _ = grid_prepared
    sheet = cv2.imread(str(output_dir / manifest["contact_sheet"]))
    assert sheet is not None and sheet.shape[0] >= 12 * 100 and sheet.std() > 30
    assert manifest["frame_shape"] == [50, 100, 3]
    assert all(
        f["sha256"] == records.sha256_file(output_dir / f["path"])
        for entry in manifest["splits"].values()
        for f in entry["files"]
    )


def test_original_mpeg1_files_prepare(shared_data, tmp_path):
    originals = sorted((shared_data / "grid" / "original_mpg").glob("*.mpg"))
    assert originals
    root = tmp_path / "grid_own_layout"
    (root / "s1").mkdir(parents=True)
    (root / "alignments" / "s1").mkdir(parents=True)
    with_alignment = []
    for mpg in originals:
        (root / "s1" / mpg.name).symlink_to(mpg)
        align = shared_data / "grid" / "s1" / "align" / f"{mpg.stem}.align"
        if align.is_file():
            (root / "alignments" / "s1" / align.name).symlink_to(align)
            with_alignment.append(mpg.stem)
    output_dir = tmp_path / "prepared"
    manifest = prepare_lipreading(corpus_clips("grid", root), output_dir, workers=1)
    kept, skipped = kept_clips(manifest), skipped_clips(manifest)
    assert sorted(kept) == sorted(with_alignment)
    assert all(s["reason"] == "missing_alignment" for s in skipped.values())
    assert all(c["num_frames"] == 75 and c["roi"]["frames_with_box"] == 75 for c in kept.values())
    crops = crops_by_id(output_dir)
    verdicts = [lips_present(c) for clip in crops.values() for c in clip]
    assert np.mean(verdicts) >= 0.97


def test_grid_audio_tracks_are_stored_aligned(shared_data, tmp_path):
    """H.264/AAC re-encodes and MPEG-1/MP2 originals: 16 kHz tracks covering the frames."""
    root = tmp_path / "grid"
    (root / "s1" / "video").mkdir(parents=True)
    (root / "s1" / "align").mkdir(parents=True)
    source = shared_data / "grid" / "s1"
    originals = sorted((shared_data / "grid" / "original_mpg").glob("*.mpg"))[:2]
    names = [p.stem for p in originals] + ["bbaf3s", "swwv6n"]
    for name in names:
        original = shared_data / "grid" / "original_mpg" / f"{name}.mpg"
        video = original if original.is_file() else source / "video" / f"{name}.mp4"
        (root / "s1" / "video" / video.name).symlink_to(video)
        (root / "s1" / "align" / f"{name}.align").symlink_to(source / "align" / f"{name}.align")
    manifest = prepare_lipreading(
        corpus_clips("grid", root), tmp_path / "prepared", LipreadingSettings(audio=True)
    )
    kept = kept_clips(manifest)
    assert sorted(kept) == sorted(names)
    assert manifest["audio"]["clips_with_audio"] == len(names)
    for clip in kept.values():
        assert clip["audio"]["samples"] == round(clip["num_frames"] / 25 * 16000)
        assert abs(clip["audio"]["drift_seconds"]) < 0.1, clip["id"]
    assert manifest["audio"]["drift_seconds"]["max_abs"] < 0.1
