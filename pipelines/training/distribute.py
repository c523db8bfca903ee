"""tf.distribute set-up: the strategy named by --strategy, the chief, global batch sizes."""

import json
import socket

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def local_cluster(workers: int) -> list[str]:
    """TF_CONFIG values for `workers` processes of one multi-worker cluster on this host, each
    on a free loopback port: the scale-out path tried on one machine (tests, benches)."""
    sockets = [socket.socket() for _ in range(workers)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    return [
        json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        for index in range(workers)
    ]


def split_cpu(count: int) -> None:
    """Splits the CPU into `count` logical devices (to try mirrored training without GPUs)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count
    )


def make_strategy(name: str, logical_cpus: int = 0) -> tf.distribute.Strategy:
    """The tf.distribute strategy named `name` (multi_worker reads TF_CONFIG).

    With `logical_cpus`, the CPU is split first and `mirrored` mirrors over those devices.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {STRATEGIES}")
    if logical_cpus:
        split_cpu(logical_cpus)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if logical_cpus:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
            return tf.distribute.MirroredStrategy(devices)
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the shared outputs (the chief, or worker 0 without one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def local_parts(strategy: tf.distribute.Strategy, batch: dict) -> list[dict]:
    """This worker's per-replica parts of a (possibly distributed) batch, in replica order:
    the batch itself without distribution."""
    if strategy.num_replicas_in_sync == 1:
        return [batch]
    # One look-up per key, not one per key and replica: this runs every step.
    results = {key: strategy.experimental_local_results(value) for key, value in batch.items()}
    count = len(next(iter(results.values())))
    return [{key: parts[i] for key, parts in results.items()} for i in range(count)]


def local_replicas(strategy: tf.distribute.Strategy) -> int:
    """Replicas on this worker (all of them without multi-worker training)."""
    workers = max(1, getattr(strategy.extended, "_num_workers", 1) or 1)
    return strategy.num_replicas_in_sync // workers
