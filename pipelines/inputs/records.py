"""Reading sharded TFRecords for one epoch, shared by the text and video pipelines."""

import tensorflow as tf


def epoch_records(
    files: list[str],
    *,
    training: bool,
    seed: int,
    epoch: int,
    shuffle_buffer: int,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """Serialised records of one epoch.

    When training, file order and records are shuffled by a seed made of (seed, epoch) only,
    so a resumed run sees the same order. `shard` = (count, index) keeps every count-th
    record, for one of several input pipelines (distributed training).
    """
    if not files:
        raise ValueError("no input files given to the input pipeline")
    epoch_seed = seed * 1000003 + epoch
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=epoch_seed)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 4),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if shard and shard[0] > 1:
        dataset = dataset.shard(*shard)
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=epoch_seed)
    return dataset
