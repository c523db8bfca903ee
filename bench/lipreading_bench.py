"""Lip-reading benchmarks: training throughput of each front-end next to a plain Keras
LipNet replica, and the end-to-end latency of transcribing one raw 3-second clip.

    python -m bench.lipreading_bench --output_dir=bench/results [--export=runs/grid/export]

Throughput runs a compiled training step on random clips of 75 frames (50x100x3 for the
LipNet shapes, 88x88x1 for the ResNet front-end), batch 8, side by side in one process.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from bench.common import peak_rss_mb, write_results
from configs import grid_lipnet
from configs.lipreading_common import lipreading_config
from data_prep.characters import CharVocabulary
from models.ctc import ctc_loss_sum
from models.seq2seq import build_model

FLAGS = flags.FLAGS
FRAMES, LABEL_LENGTH, BATCH = 75, 28, 8


def lipnet_replica(vocab_size: int) -> keras.Model:
    """Plain Keras LipNet: Conv3D 32/64/96 (3x5x5), 2 x bidirectional GRU 256, CTC logits."""
    inputs = keras.Input((FRAMES, 50, 100, 3))
    x = inputs
    for i, filters in enumerate((32, 64, 96)):
        x = keras.layers.Conv3D(
            filters,
            (3, 5, 5),
            strides=(1, 2, 2) if i == 0 else 1,
            padding="same",
            activation="relu",
        )(x)
        x = keras.layers.MaxPooling3D((1, 2, 2))(x)
    x = keras.layers.TimeDistributed(keras.layers.Flatten())(x)
    for _ in range(2):
        x = keras.layers.Bidirectional(keras.layers.GRU(256, return_sequences=True))(x)
    return keras.Model(inputs, keras.layers.Dense(vocab_size)(x))


def _batch(frame_shape, vocab_size, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(4, vocab_size, size=(BATCH, LABEL_LENGTH)).astype(np.int32)
    return {
        "inputs": tf.constant(rng.random((BATCH, FRAMES, *frame_shape), dtype=np.float32)),
        "input_lengths": tf.fill([BATCH], FRAMES),
        "targets": tf.constant(np.concatenate([np.full((BATCH, 1), 2), labels[:, :-1]], 1)),
        "labels": tf.constant(labels),
        "target_lengths": tf.fill([BATCH], LABEL_LENGTH),
    }


def _measure(step, batch, warmup: int = 2, steps: int = 6) -> dict:
    for _ in range(warmup):
        step(batch)
    started = time.monotonic()
    for _ in range(steps):
        step(batch)
    seconds = (time.monotonic() - started) / steps
    return {
        "seconds_per_step": round(seconds, 3),
        "clips_per_second": round(BATCH / seconds, 2),
        "frames_per_second": round(BATCH * FRAMES / seconds, 1),
    }


def replica_throughput(vocab_size: int) -> dict:
    model = lipnet_replica(vocab_size)
    optimizer = keras.optimizers.Adam(1e-4)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            logits = model(batch["inputs"], training=True)
            loss = (
                ctc_loss_sum(
                    logits, batch["input_lengths"], batch["labels"], batch["target_lengths"]
                )
                / BATCH
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return {"parameters": model.count_params(), **_measure(step, _batch((50, 100, 3), vocab_size))}


def ours_throughput(frontend: str, frame_shape, vocab_size: int, **model_overrides) -> dict:
    config = lipreading_config().model
    config.frontend = frontend
    config.frame_shape = tuple(frame_shape)
    config.update(model_overrides)
    model = build_model(config, None, vocab_size)
    optimizer = keras.optimizers.Adam(1e-4)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            out = model(batch, training=True)
            # The model's own joint CTC/attention objective, as the training loop computes it.
            loss = tf.add_n(
                [
                    term.weight * term.total / tf.maximum(term.count, 1.0)
                    for term in model.loss_terms(batch, out, 0.1)
                ]
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    parameters = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    return {"parameters": parameters, **_measure(step, _batch(frame_shape, vocab_size))}


def transcription_latency(export_dir: str, video: str) -> dict:
    """Seconds to transcribe one raw clip: model load, data prep, model, per decoding mode."""
    from pipelines.serving.transcriber import transcribe_video

    results = {"video": video}
    for mode in ("ctc_greedy", "joint"):
        transcribe_video(video, export_dir, mode)  # warm caches and graph
        result = transcribe_video(video, export_dir, mode)
        results[mode] = {
            "text": result["text"],
            "seconds": result["seconds"],
            "frames": int(len(result["crops"])),
        }
    return results


def run(output_dir: str, export_dir: str | None, video: str | None) -> Path:
    """Writes <output_dir>/lipreading.json."""
    vocab_size = CharVocabulary().size
    grid = grid_lipnet.get_config()
    results = {
        "batch": BATCH,
        "frames": FRAMES,
        "throughput": {
            "keras_lipnet_replica_32_64_96_gru256x2_ctc": replica_throughput(vocab_size),
            "lipseq_lipnet_32_64_96_joint": ours_throughput("lipnet", (50, 100, 3), vocab_size),
            "lipseq_lipnet_joint (configs/grid_lipnet.py)": ours_throughput(
                "lipnet",
                (50, 100, 3),
                vocab_size,
                lipnet_filters=grid.model.lipnet_filters,
                lipnet_kernels=grid.model.lipnet_kernels,
            ),
            "lipseq_resnet_88x88_joint": ours_throughput("resnet", (88, 88, 1), vocab_size),
        },
    }
    if export_dir and video and Path(export_dir).is_dir():
        results["latency"] = transcription_latency(export_dir, video)
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return write_results("lipreading", results, output_dir)


def define_flags() -> None:
    """Defines this benchmark's flags (only when run as a program)."""
    flags.DEFINE_string("output_dir", "bench/results", "Where the JSON goes.")
    flags.DEFINE_string("export", "runs/grid/export", "Exported lip-reading model for latency.")
    flags.DEFINE_string(
        "video", "../shared/data/grid/s1/video/bbaf2n.mp4", "A raw 3-second clip to transcribe."
    )


def main(argv: list[str]) -> None:
    del argv
    print(run(FLAGS.output_dir, FLAGS.export, FLAGS.video))


if __name__ == "__main__":
    define_flags()
    app.run(main)
