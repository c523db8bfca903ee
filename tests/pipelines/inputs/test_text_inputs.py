import numpy as np
import pytest

from configs import demo_toy
from data_prep.records import read_manifest, split_files
from data_prep.synthetic import toy_language
from data_prep.translation import prepare_translation
from pipelines.inputs.text import make_config_dataset, make_dataset


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    config = demo_toy.get_config()
    config.data.input_dir = str(root / "raw")
    config.data.prepared_dir = str(root / "data")
    config.data.vocab_size = 200
    toy_language.write_corpus(config.data.input_dir, num_train=600, num_val=40, num_test=40)
    prepare_translation(config)
    return config, root / "data", read_manifest(root / "data", "translation")


def test_batches_are_model_ready_and_padded_with_zero(prepared):
    config, data, manifest = prepared
    batch = next(iter(make_config_dataset(config, data, manifest, "train", training=True)))
    lengths = batch["input_lengths"].numpy()
    inputs = batch["inputs"].numpy()
    eos, bos = manifest["vocab"]["eos_id"], manifest["vocab"]["bos_id"]
    for row, n in enumerate(lengths):
        assert inputs[row, n - 1] == eos
        assert np.all(inputs[row, n:] == 0)
    targets, labels = batch["targets"].numpy(), batch["labels"].numpy()
    target_lengths = batch["target_lengths"].numpy()
    assert np.all(targets[:, 0] == bos)
    for row, n in enumerate(target_lengths):
        assert labels[row, n - 1] == eos
        np.testing.assert_array_equal(targets[row, 1:n], labels[row, : n - 1])


def test_every_example_is_seen_once_per_epoch(prepared):
    config, data, manifest = prepared
    ids = [
        i
        for batch in make_config_dataset(config, data, manifest, "train", training=True)
        for i in batch["id"].numpy().tolist()
    ]
    assert len(ids) == len(set(ids)) == manifest["splits"]["train"]["num_examples"]


def test_bucketing_groups_similar_lengths(prepared):
    config, data, manifest = prepared
    spreads = []
    for batch in make_config_dataset(config, data, manifest, "train", training=True):
        longest = np.maximum(batch["input_lengths"].numpy(), batch["target_lengths"].numpy())
        spreads.append(longest.max() - longest.min())
    assert np.median(spreads) <= 8


def test_batching_by_tokens_bounds_padded_size(prepared):
    _, data, manifest = prepared
    dataset = make_dataset(
        split_files(data, manifest, "train"),
        bos_id=2,
        eos_id=3,
        batch_size=0,
        training=True,
        bucket_boundaries=(8, 12, 16, 24),
        batch_by_tokens=True,
        max_tokens=256,
        max_length=100,
    )
    sizes = []
    for batch in dataset:
        padded = max(batch["inputs"].shape[1], batch["targets"].shape[1])
        sizes.append(batch["inputs"].shape[0])
        assert batch["inputs"].shape[0] * padded <= 256 + padded * 2
    assert len(set(sizes)) > 1


def test_evaluation_order_is_file_order(prepared):
    config, data, manifest = prepared
    dataset = make_config_dataset(config, data, manifest, "val", training=False)
    ids = [i.decode() for batch in dataset for i in batch["id"].numpy()]
    assert ids == sorted(ids)
