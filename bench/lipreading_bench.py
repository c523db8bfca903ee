"""Lip-reading benchmarks: training throughput of lipseq's models next to plain Keras LipNet
replicas, where a training step spends its time, and the latency of transcribing a raw clip.

    python -m bench.lipreading_bench --output_dir=bench/results [--export=DIR --video=CLIP]
    python -m bench.lipreading_bench --pool_order_only  # pooling before/after batch norm alone
    python -m bench.lipreading_bench --decoder_only  # the attention decoder's pass alone
    python -m bench.lipreading_bench --equal_size_only  # the replica beside lipseq at its size
    python -m bench.lipreading_bench --encoder_only  # lipseq's GRU/LSTM against Keras' own
    python -m bench.lipreading_bench --onednn_only  # TensorFlow's oneDNN CPU kernels on and off

Throughput runs a compiled training step on random clips of 75 frames, batch 16 (the GRID
recipe's), every model in one process. Every step is traced and warmed up first, outside any
timed window; then the models take turns, `steps` steps each, in each of `rounds` rounds
(every call's loss fetched, so the timer waits for the device). Figures are the median, min
and max over rounds; ratios to the replica are taken within each round, so a host that speeds
up or slows down during the run moves all rows alike. The oneDNN comparison is the exception:
TensorFlow reads that setting at import, so each of its measurements is a fresh process, the
two settings alternating.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from bench.common import finish, interleaved_seconds, peak_rss_mb, say, write_results
from bench.common import ratio_spread as common_ratio_spread
from bench.common import spread as common_spread
from bench.quality_bench import lipnet_replica
from configs import grid_lipnet
from data_prep.characters import CharVocabulary
from models import encoders
from models.ctc import ctc_loss_sum
from models.frontends import FusedBatchNormalization
from models.seq2seq import build_model
from pipelines.runtime import ONEDNN_DEFAULT_CPU_FLAGS, ONEDNN_ENV, onednn_in_use
from pipelines.training.precision import (
    CPU_BFLOAT16_FLAGS,
    compute_dtype,
    cpu_flags,
    keras_policy,
)

FLAGS = flags.FLAGS
ROOT = Path(__file__).resolve().parents[1]
# The shipped lip reader and a GRID s1 test-split clip: latency needs no training run.
RELEASE_EXPORT = str(ROOT / "models" / "releases" / "grid_s1" / "export")
LATENCY_CLIP = "../shared/data/grid/s1/video/swwv6n.mp4"
FRAMES, LABEL_LENGTH, BATCH = 75, 28, 16
RGB, GRAY80, GRAY80_CROPPED = (50, 100, 3), (40, 80, 1), (36, 72, 1)


def random_batch(frame_shape, vocab_size, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(4, vocab_size, size=(BATCH, LABEL_LENGTH)).astype(np.int32)
    starts = np.arange(LABEL_LENGTH) / LABEL_LENGTH
    return {
        "inputs": tf.constant(rng.random((BATCH, FRAMES, *frame_shape), dtype=np.float32)),
        "input_lengths": tf.fill([BATCH], FRAMES),
        "targets": tf.constant(np.concatenate([np.full((BATCH, 1), 2), labels[:, :-1]], 1)),
        "labels": tf.constant(labels),
        "target_lengths": tf.fill([BATCH], LABEL_LENGTH),
        # The recipe's guided attention reads each label's word span (clip fractions); here
        # label i is spoken over the i-th of LABEL_LENGTH equal parts of the clip.
        "label_windows": tf.constant(
            np.tile(np.stack([starts, starts + 1 / LABEL_LENGTH], -1), (BATCH, 1, 1)), tf.float32
        ),
    }


def measure_step(step, batch, warmup: int = 2, steps: int = 4, repeats: int = 3) -> dict:
    """Clips/s of `step` alone over `repeats` timed rounds, after tracing and warm-up calls;
    each call's loss is fetched, so the timer waits for the device. For one step measured on
    its own (a child process of the oneDNN comparison); rows compared with each other are
    timed by interleaved_throughput instead."""
    for _ in range(warmup):
        finish(step(batch))
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(steps):
            finish(step(batch))
        rates.append(steps * BATCH / (time.perf_counter() - started))
    return {
        "clips_per_second": round(float(np.median(rates)), 2),
        "clips_per_second_min": round(min(rates), 2),
        "clips_per_second_max": round(max(rates), 2),
        "seconds_per_step": round(BATCH / float(np.median(rates)), 3),
        "repeats": repeats,
        "steps_per_repeat": steps,
    }


def warm(calls: dict, times: int = 2) -> dict:
    """Traces and warms up every call outside any timed window; returns `calls`."""
    for call in calls.values():
        for _ in range(times):
            finish(call())
    return calls


def interleaved_throughput(calls: dict, baseline: str, rounds: int, steps: int) -> dict:
    """Clips/s of each training step (median, min, max over rounds taken in turn) and its
    ratio to `baseline`'s, each ratio within its round."""
    return interleaved_rows(interleaved_seconds(warm(calls), rounds, steps), baseline)


def interleaved_rows(seconds: dict[str, list[float]], baseline: str) -> dict:
    """Clips/s and seconds per step of each row, and its speed ratio to `baseline`'s."""
    rows = {}
    for name, values in seconds.items():
        rows[name] = {
            "clips_per_second": common_spread([BATCH / value for value in values], 2),
            "seconds_per_step": spread(values),
            f"ratio_to_{baseline}": ratio_spread(seconds[baseline], values),
        }
    return rows


def replica_training_step(vocab_size: int, batch_norm: bool = False, part: str = "all", model=None):
    """The plain Keras LipNet (bench/quality_bench.py) with CTC, 100x50 RGB, and a compiled
    training step of it; part="frontend" steps its 3D CNN alone, with the features' mean square
    as the loss, as step_breakdown times lipseq's front-end. `model`: a replica already built
    (its front-end then shares the whole step's weights)."""
    model = lipnet_replica(vocab_size, batch_norm) if model is None else model
    if part == "frontend":
        model = keras.Model(model.input, model.get_layer("features").output)
    optimizer = keras.optimizers.Adam(1e-4)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            outputs = model(batch["inputs"], training=True)
            if part == "frontend":
                loss = tf.reduce_mean(tf.square(outputs))
            else:
                loss = (
                    ctc_loss_sum(
                        outputs, batch["input_lengths"], batch["labels"], batch["target_lengths"]
                    )
                    / BATCH
                )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return model, step


def _model(frame_shape, vocab_size: int, **model_overrides):
    config = grid_lipnet.get_config().model
    with config.unlocked():
        config.frame_shape = tuple(frame_shape)
        config.update(model_overrides)
    return build_model(config, None, vocab_size)


def _objective(model, batch, part: str):
    """The loss a step differentiates: the whole joint objective, or a stage's output only."""
    if part == "all":
        out = model(batch, training=True)
        # The model's own joint CTC/attention objective, as the training loop computes it.
        terms = model.loss_terms(batch, out, 0.1)
        return tf.add_n([t.weight * t.total / tf.maximum(t.count, 1.0) for t in terms])
    features, lengths = model.frontend(batch["inputs"], batch["input_lengths"], training=True)
    if part == "frontend":
        return tf.reduce_mean(tf.square(features))
    memory, _, _ = model.encoder(features, lengths, training=True)
    return tf.reduce_mean(tf.square(memory))


def training_step(model, variables=None, part: str = "all"):
    """A compiled training step (Adam) of `model`'s own objective up to `part`."""
    variables = model.trainable_variables if variables is None else variables
    optimizer = keras.optimizers.Adam(1e-4)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = _objective(model, batch, part)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    return step


def count_parameters(model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def ours_throughput(frame_shape, vocab_size: int, **model_overrides) -> dict:
    """Clips/s of a training step of lipseq's model alone (see measure_step)."""
    model = _model(frame_shape, vocab_size, **model_overrides)
    step = training_step(model)
    batch = random_batch(frame_shape, vocab_size)
    return {"parameters": count_parameters(model), **measure_step(step, batch)}


PARTS = ("frontend", "encoder", "all")


def part_steps(model) -> dict:
    """Training steps of one model that stop after its front-end, after its encoder, and the
    whole step, each updating the variables its loss reaches."""
    variables = {
        "frontend": model.frontend.trainable_variables,
        "encoder": model.frontend.trainable_variables + model.encoder.trainable_variables,
        "all": model.trainable_variables,
    }
    return {part: training_step(model, variables[part], part) for part in PARTS}


def breakdown_of(seconds: dict[str, list[float]]) -> dict:
    """Seconds per stage from the part steps' times: each stage is the difference between the
    steps that stop after it and before it, taken within each round (median, min, max)."""
    rounds = range(len(seconds["all"]))
    stages = {
        "frontend": list(seconds["frontend"]),
        "encoder": [seconds["encoder"][i] - seconds["frontend"][i] for i in rounds],
        "attention_decoder_and_ctc": [seconds["all"][i] - seconds["encoder"][i] for i in rounds],
        "whole_step": list(seconds["all"]),
    }
    return {stage: spread(values) for stage, values in stages.items()}


def step_breakdown(models: dict, vocab_size: int, rounds: int = 3, steps: int = 3) -> dict:
    """Seconds a training step spends in front-end, encoder and decoder + CTC (fwd + bwd) for
    each named (frame_shape, overrides), and the replica's front-end against its whole step.

    The part steps of one model share its weights; every part of every model is timed in turn
    within each round, so each difference is taken between steps timed back to back. Each
    stage includes the optimizer update of its own variables.
    """
    calls = {}
    for name, (shape, overrides) in models.items():
        model, batch = _model(shape, vocab_size, **overrides), random_batch(shape, vocab_size)
        for part, step in part_steps(model).items():
            calls[(name, part)] = functools.partial(step, batch)
    replica = lipnet_replica(vocab_size)
    rgb = random_batch(RGB, vocab_size)
    for part in ("frontend", "all"):
        _, step = replica_training_step(vocab_size, part=part, model=replica)
        calls[("replica", part)] = functools.partial(step, rgb)
    seconds = interleaved_seconds(warm(calls), rounds, steps)
    results = {
        name: breakdown_of({part: seconds[(name, part)] for part in PARTS}) for name in models
    }
    results["Keras LipNet replica"] = {
        "frontend": spread(seconds[("replica", "frontend")]),
        "whole_step": spread(seconds[("replica", "all")]),
        "frontend_share": ratio_spread(
            seconds[("replica", "frontend")], seconds[("replica", "all")]
        ),
    }
    return results


def batch_norm_step(shape, fused: bool):
    """A compiled forward and backward pass through one batch-norm layer on `shape`: Keras'
    own layer or the fused-kernel one the front-ends use."""
    layer = FusedBatchNormalization() if fused else keras.layers.BatchNormalization()
    layer.build(shape)
    inputs = tf.Variable(tf.random.stateless_normal(shape, (0, 0)))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(tf.nn.relu(layer(inputs, training=True))))
        return tf.add_n(
            [tf.reduce_sum(g) for g in tape.gradient(loss, [inputs, *layer.trainable_variables])]
        )

    return step


def batch_norm_comparison(frame_shape, filters, rounds: int = 3, steps: int = 5) -> dict:
    """Keras' batch norm against the fused one at each front-end block's output shape (batch
    16, 75 frames), the two taking turns within each round; the ratio within each round."""
    height, width = -(-frame_shape[0] // 2), -(-frame_shape[1] // 2)
    calls = {}
    for block_filters in filters:
        shape = (BATCH, FRAMES, height, width, block_filters)
        for fused in (False, True):
            calls[(shape, fused)] = batch_norm_step(shape, fused)
        height, width = height // 2, width // 2
    seconds = interleaved_seconds(warm(calls), rounds, steps)
    rows = {}
    for shape in dict.fromkeys(shape for shape, _ in calls):
        stock, fused = seconds[(shape, False)], seconds[(shape, True)]
        rows["x".join(map(str, shape))] = {
            "keras_seconds": spread(stock),
            "fused_seconds": spread(fused),
            "fused_to_keras": ratio_spread(fused, stock),
        }
    return rows


# LipNet's own layout, the replica's: the third block's kernel is 3x3x3 (the recipe's default,
# three 3x5x5 blocks, does 2.8x that block's work). No frame-label head: it is a training
# signal of GRID's recipe (timed in the recipe's rows), not part of the model sized against.
LIPNET_SIZE = {
    "lipnet_filters": (32, 64, 96),
    "lipnet_kernels": ((3, 5, 5), (3, 5, 5), (3, 3, 3)),
    "encoder_units": 256,
    "frame_label_weight": 0.0,
}
NORM_FIRST, POOL_FIRST = {"lipnet_pool_first": False}, {"lipnet_pool_first": True}
# The replica's parameter count (4,581,642) with lipseq's decoder and CTC head on top of
# LipNet's front-end: the encoder narrows to 2xbi-GRU 214 (4,588,722 parameters), so the
# attention decoder's ~0.92M parameters come out of the encoder, not on top of the replica.
REPLICA_PARAMETERS = {**LIPNET_SIZE, "encoder_units": 214}


def transcription_latency(
    export_dir: str, video: str, repeats: int = 5, modality: str | None = None
) -> dict:
    """Seconds to transcribe one raw clip with the model loaded once: preparation and model
    per decoding mode, median and spread over `repeats` rounds after a warm-up call of each,
    the modes taking turns within each round.

    modality: for an audio-visual export, which stream(s) to read (video, audio, audio_visual).
    """
    from pipelines.inference.lipreading import VideoTranscriber

    results = {"export": export_dir, "video": video, "repeats": repeats}
    transcribers, loads = {}, {}
    for mode in ("ctc_greedy", "joint"):
        started = time.monotonic()
        transcribers[mode] = VideoTranscriber(export_dir, mode, modality=modality)
        loads[mode] = time.monotonic() - started
        transcribers[mode].transcribe(video)  # traces the signature and warms caches
    runs = {mode: [] for mode in transcribers}
    for _ in range(repeats):
        for mode, transcriber in transcribers.items():
            runs[mode].append(transcriber.transcribe(video))
    for mode, done in runs.items():
        stages = {stage: [r["seconds"][stage] for r in done] for stage in ("prepare", "model")}
        results[mode] = {
            "text": done[-1]["text"],
            "frames": int(len(done[-1]["crops"])),
            "load_model_seconds": round(loads[mode], 3),
            **{f"{stage}_seconds": spread(v) for stage, v in stages.items()},
        }
    return results


# Median, min and max of repeated measurements, to 3 decimals.
spread = functools.partial(common_spread, digits=3)
ratio_spread = functools.partial(common_ratio_spread, digits=3)


def throughput_steps(vocab_size: int) -> dict:
    """The training steps `run` compares, by row name: the replicas (the peers) and lipseq's
    model at LipNet's size and as the GRID recipe was and is (configs/grid_lipnet.py as this
    run reads it, frame-label head included), each with its parameter count."""
    rows = {}
    for name, batch_norm in (
        ("keras_lipnet_replica", False),
        ("keras_lipnet_replica_bn_dropout", True),
    ):
        model, step = replica_training_step(vocab_size, batch_norm)
        rows[name] = (model.count_params(), RGB, step)
    for name, shape, overrides in OURS_ROWS:
        model = _model(shape, vocab_size, **overrides)
        rows[name] = (count_parameters(model), shape, training_step(model))
    return rows


OURS_ROWS = (
    (
        "lipseq at LipNet's size (its layers, 2xbiGRU256, joint CTC/attention, 100x50x3)",
        RGB,
        {**LIPNET_SIZE, **NORM_FIRST},
    ),
    ("lipseq GRID recipe before (16/32/48, 2xbiGRU256, 100x50x3)", RGB, {"encoder_units": 256}),
    ("lipseq GRID recipe on whole 80x40x1 frames (16/32/48, 2xbiGRU192)", GRAY80, NORM_FIRST),
    (
        "lipseq GRID recipe (configs/grid_lipnet.py: 72x36 training crops of 80x40x1)",
        GRAY80_CROPPED,
        NORM_FIRST,
    ),
)
BREAKDOWN_MODELS = {
    "GRID recipe (72x36 crops of 80x40x1, 2xbiGRU192)": (GRAY80_CROPPED, NORM_FIRST),
    "GRID recipe before (100x50x3, 2xbiGRU256)": (RGB, {"encoder_units": 256}),
    "LipNet's size (100x50x3, 32/64/96, 2xbiGRU256)": (RGB, {**LIPNET_SIZE, **NORM_FIRST}),
}


def throughput(vocab_size: int, rounds: int, steps: int) -> dict:
    """Clips/s of every row of throughput_steps, rounds interleaved, ratios to the replica."""
    rows = throughput_steps(vocab_size)
    batches = {shape: random_batch(shape, vocab_size) for _, shape, _ in rows.values()}
    calls = {
        name: functools.partial(step, batches[shape]) for name, (_, shape, step) in rows.items()
    }
    timed = interleaved_throughput(calls, "keras_lipnet_replica", rounds, steps)
    return {name: {"parameters": rows[name][0], **timed[name]} for name in rows}


def run(
    output_dir: str, export_dir: str | None, video: str | None, rounds: int = 3, steps: int = 4
) -> Path:
    """Writes <output_dir>/lipreading.json: training throughput beside the replica, the step
    breakdown and the batch-norm pass (each in interleaved rounds), and, when the export and
    the clip exist, transcription latency."""
    vocab_size = CharVocabulary().size
    say(f"lipreading: throughput, {rounds} interleaved rounds of {steps} steps per model")
    results = {
        "batch": BATCH,
        "frames": FRAMES,
        "rounds": rounds,
        "steps_per_round": steps,
        "recipe_frame_label_weight": float(grid_lipnet.get_config().model.frame_label_weight),
        "throughput": throughput(vocab_size, rounds, steps),
    }
    say("lipreading: batch norm, Keras' against the fused kernel")
    results["batch_norm_training_pass"] = batch_norm_comparison(GRAY80, (16, 32, 48), rounds)
    say("lipreading: where a training step spends its time")
    results["step_seconds_breakdown"] = step_breakdown(BREAKDOWN_MODELS, vocab_size, rounds)
    if export_dir and video and Path(export_dir).is_dir() and Path(video).is_file():
        say(f"lipreading: transcription latency of {video} with {export_dir}")
        results["latency"] = transcription_latency(export_dir, video)
    else:
        say(f"lipreading: latency skipped, no export at {export_dir} or no clip at {video}")
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return write_results("lipreading", results, output_dir)


def pool_order(output_dir: str, rounds: int = 3, steps: int = 4) -> Path:
    """Writes <output_dir>/lipreading_pool_order.json: training throughput with pooling after
    and before batch norm, at LipNet's size and on the GRID recipe, beside the plain replica
    (the peer), all in one process, traced and warmed up, then timed in interleaved rounds."""
    vocab_size = CharVocabulary().size
    model, replica = replica_training_step(vocab_size)
    batches = {shape: random_batch(shape, vocab_size) for shape in (RGB, GRAY80_CROPPED)}
    calls = {"keras_lipnet_replica": functools.partial(replica, batches[RGB])}
    parameters = {"keras_lipnet_replica": model.count_params()}
    for name, shape, size in (
        ("lipnet_size", RGB, LIPNET_SIZE),
        ("grid_recipe_72x36", GRAY80_CROPPED, {}),
    ):
        for order, option in (("pool_after_norm", NORM_FIRST), ("pool_before_norm", POOL_FIRST)):
            ours = _model(shape, vocab_size, **size, **option)
            calls[f"{name}_{order}"] = functools.partial(training_step(ours), batches[shape])
            parameters[f"{name}_{order}"] = count_parameters(ours)
    seconds = interleaved_seconds(warm(calls), rounds, steps)
    rows = interleaved_rows(seconds, "keras_lipnet_replica")
    for name in ("lipnet_size", "grid_recipe_72x36"):
        after, before = seconds[f"{name}_pool_after_norm"], seconds[f"{name}_pool_before_norm"]
        rows[f"{name}_pool_before_norm"]["ratio_to_pool_after_norm"] = ratio_spread(after, before)
    for name, row in rows.items():
        row["parameters"] = parameters[name]
    results = {"batch": BATCH, "frames": FRAMES, "rounds": rounds, "steps_per_round": steps}
    results["throughput"] = rows
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return write_results("lipreading_pool_order", results, output_dir)


KERAS_RNN_LAYERS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


@contextlib.contextmanager
def keras_rnn(cell: str = "gru"):
    """Models built inside use Keras' own GRU or LSTM in their encoder (what lipseq used before
    its projected-input layers), so the bench can show what those layers buy in the same run."""
    saved = encoders.RNN_LAYERS[cell]
    encoders.RNN_LAYERS[cell] = KERAS_RNN_LAYERS[cell]
    try:
        yield
    finally:
        encoders.RNN_LAYERS[cell] = saved


def equal_size(output_dir: str, rounds: int = 5, steps: int = 4) -> Path:
    """Writes <output_dir>/lipreading_equal_size.json: training throughput of the replica and
    of lipseq at LipNet's layers (5.57M parameters: the replica's plus a decoder) and at the
    replica's parameter count (REPLICA_PARAMETERS), each pooling after and before batch norm;
    beside them lipseq's LipNet-layers model and the GRID recipe with Keras' own GRU.
    Every step is traced and warmed up first; then the rounds are interleaved, each model
    timed once per round, so a host that speeds up or slows down during the run moves all rows
    alike and the ratios are taken within each round."""
    vocab_size = CharVocabulary().size
    batches = {RGB: random_batch(RGB, vocab_size)}
    batches[GRAY80_CROPPED] = random_batch(GRAY80_CROPPED, vocab_size)
    steps_by_name, parameters, shapes = {}, {}, {}
    for name, batch_norm in (
        ("keras_lipnet_replica", False),
        ("keras_lipnet_replica_bn_dropout", True),
    ):
        model, steps_by_name[name] = replica_training_step(vocab_size, batch_norm)
        parameters[name], shapes[name] = model.count_params(), RGB
    ours = [
        (f"lipseq_{name}_{order}", RGB, {**size, **option}, False)
        for name, size in (
            ("lipnet_layers", LIPNET_SIZE),
            ("replica_parameters", REPLICA_PARAMETERS),
        )
        for order, option in (("pool_after_norm", NORM_FIRST), ("pool_before_norm", POOL_FIRST))
    ]
    ours += [
        (
            "lipseq_lipnet_layers_pool_after_norm_keras_gru",
            RGB,
            {**LIPNET_SIZE, **NORM_FIRST},
            True,
        ),
        ("lipseq_grid_recipe_72x36", GRAY80_CROPPED, NORM_FIRST, False),
        ("lipseq_grid_recipe_72x36_keras_gru", GRAY80_CROPPED, NORM_FIRST, True),
    ]
    for name, shape, overrides, stock_gru in ours:
        with keras_rnn() if stock_gru else contextlib.nullcontext():
            model = _model(shape, vocab_size, **overrides)
        steps_by_name[name] = training_step(model)
        parameters[name], shapes[name] = count_parameters(model), shape
    for name, step in steps_by_name.items():
        for _ in range(2):
            step(batches[shapes[name]]).numpy()
    calls = {
        name: functools.partial(step, batches[shapes[name]]) for name, step in steps_by_name.items()
    }
    seconds = interleaved_seconds(calls, rounds, steps)
    rates = {name: [BATCH / value for value in values] for name, values in seconds.items()}
    replica = rates["keras_lipnet_replica"]
    throughput = {}
    for name, values in rates.items():
        ratios = [value / base for value, base in zip(values, replica, strict=True)]
        throughput[name] = {
            "parameters": parameters[name],
            "clips_per_second": round(float(np.median(values)), 2),
            "clips_per_second_min": round(min(values), 2),
            "clips_per_second_max": round(max(values), 2),
            "ratio_to_replica": round(float(np.median(ratios)), 3),
            "ratio_to_replica_min": round(min(ratios), 3),
            "ratio_to_replica_max": round(max(ratios), 3),
        }
    for name in [name for name in rates if name.endswith("_keras_gru")]:
        projected = name.removesuffix("_keras_gru")
        gains = [a / b for a, b in zip(rates[projected], rates[name], strict=True)]
        throughput[projected]["ratio_to_keras_gru"] = round(float(np.median(gains)), 3)
        throughput[projected]["ratio_to_keras_gru_min"] = round(min(gains), 3)
        throughput[projected]["ratio_to_keras_gru_max"] = round(max(gains), 3)
    results = {
        "batch": BATCH,
        "frames": FRAMES,
        "rounds": rounds,
        "steps_per_round": steps,
        "throughput": throughput,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    return write_results("lipreading_equal_size", results, output_dir)


DECODER_VARIANTS = {
    "recipe: location-aware attention, input feeding": {},
    "additive attention without location features": {"attention": "bahdanau"},
    "multiplicative attention": {"attention": "luong"},
    "location-aware attention, no input feeding": {"input_feeding": False},
}


def decoder_pass(output_dir: str, rounds: int = 5, steps: int = 10) -> Path:
    """Writes <output_dir>/lipreading_decoder.json: seconds of the attention decoder's
    teacher-forced training pass (forward, backward, Adam update) on GRID recipe shapes
    (encoder memory [16, 75, 384], 28 characters), with the recipe's decoder and with each
    cheaper choice, the variants' timed rounds interleaved so all see the same machine."""
    vocab_size = CharVocabulary().size
    rng = np.random.default_rng(0)
    memory = tf.constant(rng.normal(size=(BATCH, FRAMES, 384)).astype(np.float32))
    lengths = tf.fill([BATCH], FRAMES)
    batch = random_batch(GRAY80_CROPPED, vocab_size)
    steps_by_name = {}
    for name, overrides in DECODER_VARIANTS.items():
        decoder = _model(GRAY80_CROPPED, vocab_size, **overrides).decoder
        optimizer = keras.optimizers.Adam(1e-4)

        @tf.function
        def step(decoder=decoder, optimizer=optimizer):
            with tf.GradientTape() as tape:
                prepared = decoder.prepare_memory(memory, lengths)
                state = decoder.initial_state(memory[:, -1], prepared)
                out = decoder(batch["targets"], prepared, state, training=True)
                loss = tf.reduce_mean(tf.square(out["logits"])) + tf.reduce_mean(out["alignments"])
            variables = decoder.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return loss

        for _ in range(3):
            step()
        steps_by_name[name] = step
    seconds = interleaved_seconds(steps_by_name, rounds, steps)
    recipe = float(np.median(seconds[next(iter(seconds))]))
    results = {
        "batch": BATCH,
        "frames": FRAMES,
        "characters": LABEL_LENGTH,
        "seconds_per_pass": {
            name: {**spread(values), "ratio_to_recipe": round(float(np.median(values)) / recipe, 2)}
            for name, values in seconds.items()
        },
    }
    return write_results("lipreading_decoder", results, output_dir)


ENCODER_SHAPES = {
    "lip-reading features (batch 16, 75 frames, 1,728 wide)": (16, 75, 1728),
    "token embeddings (batch 64, 30 tokens, 256 wide)": (64, 30, 256),
}


def encoder_cells(output_dir: str, rounds: int = 5, steps: int = 5, units: int = 256) -> Path:
    """Writes <output_dir>/encoder_cells.json: the training pass (forward and backward) of a
    2-layer bidirectional encoder with lipseq's projected-input GRU and LSTM against Keras'
    own layers, on lip-reading and text shapes, rounds interleaved, ratio within each round."""
    calls = {}
    for shape_name, shape in ENCODER_SHAPES.items():
        features = tf.random.stateless_normal(shape, seed=(0, 1))
        lengths = tf.fill([shape[0]], shape[1])
        for cell in ("gru", "lstm"):
            for own in (True, False):
                with contextlib.nullcontext() if own else keras_rnn(cell):
                    encoder = encoders.BidirectionalRNNEncoder(cell=cell, units=units, num_layers=2)
                    encoder.build(shape)

                @tf.function
                def step(encoder=encoder, features=features, lengths=lengths):
                    with tf.GradientTape() as tape:
                        outputs, _, _ = encoder(features, lengths, training=True)
                        loss = tf.reduce_mean(outputs**2)
                    gradients = tape.gradient(loss, encoder.trainable_variables)
                    return tf.add_n([tf.reduce_sum(g) for g in gradients])

                for _ in range(2):
                    step().numpy()
                calls[(shape_name, cell, "lipseq" if own else "keras")] = step
    seconds = interleaved_seconds(calls, rounds, steps)
    results = {
        "rounds": rounds,
        "steps_per_round": steps,
        "units": units,
        "layers": 2,
        "shapes": {},
    }
    for (shape_name, cell, kind), values in seconds.items():
        entry = results["shapes"].setdefault(shape_name, {}).setdefault(cell, {})
        entry[f"{kind}_seconds"] = spread(values)
    for shape_name, cells in results["shapes"].items():
        for cell, entry in cells.items():
            gains = [
                keras_value / own_value
                for own_value, keras_value in zip(
                    seconds[(shape_name, cell, "lipseq")],
                    seconds[(shape_name, cell, "keras")],
                    strict=True,
                )
            ]
            entry["speedup_over_keras"] = spread(gains)
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return write_results("encoder_cells", results, output_dir)


PRECISION_MODELS = {
    "GRID recipe (72x36 windows of 80x40 gray, 16/32/48, 2xbiGRU192)": (GRAY80_CROPPED, {}),
    "lipseq at LipNet's layers (100x50 RGB, 32/64/96, 2xbiGRU256)": (RGB, LIPNET_SIZE),
}


def precision(output_dir: str, rounds: int = 5, steps: int = 4) -> Path:
    """Writes <output_dir>/lipreading_precision.json: a training step of the GRID recipe and of
    lipseq at LipNet's layers computing in float32 and in bfloat16 (Keras' mixed_bfloat16,
    float32 variables, as `config.mixed_precision="bfloat16"` trains), rounds interleaved,
    the ratio taken within each round; beside them what "auto" picks on this machine."""
    vocab_size = CharVocabulary().size
    calls = {}
    for name, (shape, overrides) in PRECISION_MODELS.items():
        batch = random_batch(shape, vocab_size)
        for policy in ("float32", "mixed_bfloat16"):
            with keras_policy(policy):
                model = _model(shape, vocab_size, **NORM_FIRST, **overrides)
                step = training_step(model)
                for _ in range(2):
                    step(batch).numpy()
            calls[(name, policy)] = functools.partial(step, batch)
    seconds = interleaved_seconds(calls, rounds, steps)
    results = {
        "batch": BATCH,
        "frames": FRAMES,
        "rounds": rounds,
        "steps_per_round": steps,
        "cpu_bfloat16_flags": sorted(cpu_flags() & set(CPU_BFLOAT16_FLAGS)),
        "auto_computes_in": compute_dtype("auto"),
        "models": {},
    }
    for name in PRECISION_MODELS:
        float32, bfloat16 = seconds[(name, "float32")], seconds[(name, "mixed_bfloat16")]
        results["models"][name] = {
            "float32_clips_per_second": spread([BATCH / value for value in float32]),
            "bfloat16_clips_per_second": spread([BATCH / value for value in bfloat16]),
            "bfloat16_speedup": spread([a / b for a, b in zip(float32, bfloat16, strict=True)]),
        }
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return write_results("lipreading_precision", results, output_dir)


def recipe_step() -> dict:
    """Clips/s of the GRID recipe's training step in this process, and whether this process's
    TensorFlow runs oneDNN kernels (its own report, None where it has none)."""
    step = ours_throughput(GRAY80_CROPPED, CharVocabulary().size, **NORM_FIRST)
    return {"onednn_enabled": onednn_in_use(), **step}


def _recipe_step_in_child(enabled: bool) -> dict:
    """recipe_step in a fresh process: TensorFlow reads the oneDNN setting once, at import."""
    env = {**os.environ, ONEDNN_ENV: "1" if enabled else "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    code = "import json, bench.lipreading_bench as b; print(json.dumps(b.recipe_step()))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"oneDNN={enabled} child failed: {out.stderr[-800:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def onednn(output_dir: str, rounds: int = 3) -> Path:
    """Writes <output_dir>/onednn.json: the GRID recipe's training step with TensorFlow's
    oneDNN CPU kernels off and on, a fresh process per measurement, rounds interleaved, the
    speed-up taken within each round; beside them the CPU features that make TensorFlow choose
    oneDNN by itself, and so whether `lipseq` (which asks for it) changes anything here."""
    measured = {False: [], True: []}
    for round_index in range(rounds):
        for setting in (False, True):
            measured[setting].append(_recipe_step_in_child(setting))
            logging.info(
                "round %d/%d oneDNN %s: %.2f clips/s",
                round_index + 1,
                rounds,
                "on" if setting else "off",
                measured[setting][-1]["clips_per_second"],
            )
    off, on = ([m["clips_per_second"] for m in measured[s]] for s in (False, True))
    flags_here = sorted(cpu_flags() & set(ONEDNN_DEFAULT_CPU_FLAGS))
    results = {
        "model": "GRID recipe (configs/grid_lipnet.py: 72x36 gray crops, 16/32/48, 2xbiGRU192, "
        "attention decoder + CTC), batch 16, 75 frames, random clips",
        "rounds": rounds,
        "each_measurement": "a fresh process: trace, 2 warm-up steps, median of 3 x 4 steps",
        "cpu_flags_that_turn_onednn_on_by_default": flags_here,
        "tensorflow_default_here": "on" if flags_here else "off",
        "onednn_enabled_in_children": {
            "off": sorted({m["onednn_enabled"] for m in measured[False]}, key=str),
            "on": sorted({m["onednn_enabled"] for m in measured[True]}, key=str),
        },
        "clips_per_second_onednn_off": spread(off),
        "clips_per_second_onednn_on": spread(on),
        "seconds_per_step_onednn_off": spread([BATCH / value for value in off]),
        "seconds_per_step_onednn_on": spread([BATCH / value for value in on]),
        "onednn_speedup": spread([b / a for a, b in zip(off, on, strict=True)]),
    }
    return write_results("onednn", results, output_dir)


def define_flags() -> None:
    """Defines this benchmark's flags (only when run as a program)."""
    flags.DEFINE_string("output_dir", "bench/results", "Where the JSON goes.")
    flags.DEFINE_string(
        "export", RELEASE_EXPORT, "Exported lip-reading model for latency (the shipped release)."
    )
    flags.DEFINE_string(
        "video",
        LATENCY_CLIP,
        "A raw 3-second clip to transcribe (a GRID s1 test-split clip).",
    )
    flags.DEFINE_bool(
        "pool_order_only",
        False,
        "Only compare pooling before and after batch norm (lipreading_pool_order.json).",
    )
    flags.DEFINE_bool(
        "equal_size_only",
        False,
        "Only the replica beside lipseq at LipNet's layers and at the replica's parameter "
        "count, rounds interleaved (lipreading_equal_size.json).",
    )
    flags.DEFINE_bool(
        "encoder_only",
        False,
        "Only the encoder's training pass, lipseq's GRU/LSTM against Keras' (encoder_cells.json).",
    )
    flags.DEFINE_bool(
        "precision_only",
        False,
        "Only a training step in float32 against bfloat16 (lipreading_precision.json).",
    )
    flags.DEFINE_bool(
        "onednn_only",
        False,
        "Only the GRID recipe's step with TensorFlow's oneDNN kernels off and on (onednn.json).",
    )
    flags.DEFINE_bool(
        "decoder_only",
        False,
        "Only time the attention decoder's training pass (lipreading_decoder.json).",
    )


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.pool_order_only:
        print(pool_order(FLAGS.output_dir))
    elif FLAGS.equal_size_only:
        print(equal_size(FLAGS.output_dir))
    elif FLAGS.encoder_only:
        print(encoder_cells(FLAGS.output_dir))
    elif FLAGS.precision_only:
        print(precision(FLAGS.output_dir))
    elif FLAGS.decoder_only:
        print(decoder_pass(FLAGS.output_dir))
    elif FLAGS.onednn_only:
        print(onednn(FLAGS.output_dir))
    else:
        print(run(FLAGS.output_dir, FLAGS.export, FLAGS.video))


if __name__ == "__main__":
    define_flags()
    app.run(main)
