"""tf.data input pipeline for prepared translation shards (schema: data_prep/records.py).

Each element is a dict ready for the model:
    inputs [B, S] source ids + eos, input_lengths [B],
    targets [B, T] bos + target ids (decoder input), labels [B, T] target ids + eos,
    target_lengths [B], id [B] (string).
Batches are bucketed by length and padded with 0 (the pad id).
"""

import tensorflow as tf

from data_prep.records import parse_text, split_files
from pipelines.inputs.records import epoch_records, finish_pipeline


def parse_example(serialized, bos_id: int, eos_id: int) -> dict:
    """One serialised record -> model-ready tensors (unbatched)."""
    example = parse_text(serialized)
    source, target = example["source_ids"], example["target_ids"]
    inputs = tf.concat([source, [eos_id]], axis=0)
    return {
        "id": example["id"],
        "inputs": inputs,
        "input_lengths": tf.shape(inputs)[0],
        "targets": tf.concat([[bos_id], target], axis=0),
        "labels": tf.concat([target, [eos_id]], axis=0),
        "target_lengths": tf.shape(target)[0] + 1,
    }


def _bucket_batch_sizes(boundaries, batch_size, batch_by_tokens, max_tokens, max_length):
    if not batch_by_tokens:
        return [batch_size] * (len(boundaries) + 1)
    upper = list(boundaries) + [max(max_length + 2, boundaries[-1] + 1)]
    return [max(1, max_tokens // bound) for bound in upper]


def make_dataset(
    files: list[str],
    *,
    bos_id: int,
    eos_id: int,
    batch_size: int,
    training: bool,
    seed: int = 0,
    epoch: int = 0,
    bucket_boundaries=(8, 12, 16, 20, 24, 32, 48, 64, 100),
    batch_by_tokens: bool = False,
    max_tokens: int = 2048,
    max_length: int = 100,
    shuffle_buffer: int = 20000,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """One epoch of batches; the order is a function of (seed, epoch) alone when training.

    `shard` = (count, index) keeps every count-th record, for one of several input pipelines.
    """
    dataset = epoch_records(
        files,
        training=training,
        seed=seed,
        epoch=epoch,
        shuffle_buffer=shuffle_buffer,
        shard=shard,
    )
    dataset = dataset.map(
        lambda x: parse_example(x, bos_id, eos_id),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if training:
        dataset = dataset.bucket_by_sequence_length(
            element_length_func=lambda x: tf.maximum(x["input_lengths"], x["target_lengths"]),
            bucket_boundaries=list(bucket_boundaries),
            bucket_batch_sizes=_bucket_batch_sizes(
                bucket_boundaries, batch_size, batch_by_tokens, max_tokens, max_length
            ),
        )
    else:
        dataset = dataset.padded_batch(batch_size)
    return finish_pipeline(dataset)


def make_config_dataset(
    config, prepared_dir, manifest, split, training, epoch=0, batch_size=None, shard=None
):
    """`make_dataset` with every setting read from a translation config."""
    return make_dataset(
        split_files(prepared_dir, manifest, split),
        bos_id=manifest["vocab"]["bos_id"],
        eos_id=manifest["vocab"]["eos_id"],
        batch_size=batch_size or config.batch_size,
        training=training,
        seed=config.seed,
        epoch=epoch,
        bucket_boundaries=tuple(config.data.bucket_boundaries),
        batch_by_tokens=config.batch_by_tokens,
        max_tokens=config.max_tokens,
        max_length=config.data.max_length,
        shuffle_buffer=config.data.shuffle_buffer,
        shard=shard,
    )
