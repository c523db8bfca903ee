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


PREFETCH_BATCHES = 2


def finish_pipeline(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Prefetches batches, with tf.data's autotuner off.

    Training builds a new pipeline every epoch (its order depends only on (seed, epoch), so a
    resumed run replays it). With autotuning on, the first batch of each new pipeline took
    35-40 s with the CPU idle inside a training process (GRID, 2 cores): half of a 60-minute
    run. AUTOTUNE parallelism then means one call per core; the step time is unchanged.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)
