"""Preparation as a TFDS dataset built with Apache Beam: the same clips, records and skips as
`lipseq prepare`, read by the training pipeline through lipseq's manifest and by TFDS."""

import json

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from apache_beam.metrics.metric import MetricsFilter

from data_prep.beam_prep import LipseqClips, LipseqClipsConfig, _prepared_split, prepare_with_beam
from data_prep.corpora.grid import iter_grid
from data_prep.lipreading import LipreadingSettings, prepare_lipreading_corpus
from data_prep.records import parse_clip, read_manifest, split_files
from data_prep.synthetic.faces import write_synthetic_corpus

NUM_CLIPS = 7


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Generated GRID-layout clips with their sound, the first of them overwritten with bytes
    no decoder reads."""
    root = tmp_path_factory.mktemp("beam_corpus")
    write_synthetic_corpus(root, NUM_CLIPS, seed=5, audio=True)
    broken = sorted((root / "s1" / "video").glob("*.mp4"))[0]
    broken.write_bytes(b"no video here " * 64)
    return root, broken.stem


def data_config(root, prepared_dir, **settings):
    return {
        "dataset": "grid",
        "input_dir": str(root),
        "prepared_dir": str(prepared_dir),
        "max_clips": 0,
        "workers": 1,
        **settings,
    }


@pytest.fixture(scope="module")
def both(corpus, tmp_path_factory):
    """The corpus prepared for an audio-visual model (frames and sound) by `lipseq prepare`
    and by Beam on two worker processes."""
    root, _ = corpus
    local_dir, beam_dir = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("beam")
    local = prepare_lipreading_corpus(data_config(root, local_dir, audio=True))
    options = "direct_running_mode=multi_processing,direct_num_workers=2"
    built = prepare_with_beam(data_config(root, beam_dir, audio=True), options)
    return (local_dir, local), (beam_dir, built)


def records_by_id(prepared_dir, manifest, split):
    clips = {}
    for raw in tf.data.TFRecordDataset(split_files(prepared_dir, manifest, split)):
        clip = {key: value.numpy() for key, value in parse_clip(raw).items()}
        clips[clip["id"].decode()] = clip
    return clips


def test_beam_writes_the_records_lipseq_prepare_writes(both):
    (local_dir, local), (beam_dir, built) = both
    assert sorted(built["splits"]) == sorted(local["splits"])
    for split in local["splits"]:
        ours = records_by_id(local_dir, local, split)
        theirs = records_by_id(beam_dir, read_manifest(beam_dir, "lipreading"), split)
        assert sorted(theirs) == sorted(ours) and ours
        for clip_id, record in ours.items():
            for key, value in record.items():
                np.testing.assert_array_equal(theirs[clip_id][key], value, err_msg=key)


def test_the_manifest_counts_what_lipseq_prepare_counts(both, corpus):
    (_, local), (_, built) = both
    _, broken = corpus
    assert built["skipped_by_reason"] == local["skipped_by_reason"] == {"unreadable": 1}
    skipped = [item for entry in built["splits"].values() for item in entry["skipped"]]
    assert [(item["id"], item["reason"]) for item in skipped] == [(broken, "unreadable")]
    assert built["normalisation"] == local["normalisation"]
    assert built["audio"] == local["audio"] and built["audio"]["clips_with_audio"] > 0
    assert built["frame_shape"] == local["frame_shape"]
    assert built["settings"] == local["settings"]
    for split, entry in local["splits"].items():
        assert built["splits"][split]["clips"] == entry["clips"]
        assert built["splits"][split]["num_frames"] == entry["num_frames"]


def test_tfds_reads_the_same_clips_as_typed_tensors(both):
    (local_dir, local), (beam_dir, built) = both
    config = LipseqClipsConfig(name="grid", dataset="grid", input_dir=built["input_dir"])
    builder = LipseqClips(data_dir=str(beam_dir), config=config, file_format="tfrecord")
    ours = records_by_id(local_dir, local, "train")
    for example in tfds.as_numpy(builder.as_dataset(split="train")):
        record = ours[example["id"].decode()]
        frames = np.frombuffer(example["frames"], np.uint8).reshape(record["frames"].shape)
        np.testing.assert_array_equal(frames, record["frames"])
        np.testing.assert_array_equal(example["roi_boxes"].reshape(-1, 4), record["roi_boxes"])
        assert [w.decode() for w in example["words"]] == [w.decode() for w in record["words"]]
    assert builder.info.splits["train"].num_examples == local["splits"]["train"]["num_examples"]


def test_skips_are_counted_as_beam_metrics(corpus, tmp_path):
    root, broken = corpus
    specs = sorted(iter_grid(root), key=lambda spec: spec.id)[:3]
    summary = tmp_path / "summary.json"
    pipeline = beam.Pipeline(runner="DirectRunner")
    _ = pipeline | _prepared_split("train", specs, LipreadingSettings(), summary)
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_namespace("lipseq"))["counters"]
    counts = {counter.key.metric.name: counter.committed for counter in counters}
    assert counts == {"unreadable": 1, "kept": 2}
    assert [item["id"] for item in json.loads(summary.read_text())["skipped"]] == [broken]


def test_a_task_without_beam_preparation_says_so():
    from configs import multi30k_gru_attention
    from data_prep.errors import ConfigError
    from pipelines.tasks import task_for

    config = multi30k_gru_attention.get_config()
    with pytest.raises(ConfigError, match="translation task prepares on one machine only"):
        task_for(config).prepare_with_beam()
