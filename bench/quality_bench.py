"""Quality per unit of compute: lipseq's GRID recipe and plain Keras LipNet replicas, each
trained on its own CPU core, side by side. Not part of CI: `make bench-quality`.

    python -m bench.quality_bench --minutes=30 --replica_max_minutes=120 \
        --models=lipseq,lipnet,lipnet_bn

lipseq trains `configs/grid_lipnet.py:short_budget` by default (the recipe with its windows'
reach grown over the first 30 epochs, which a half hour on one core needs; `--lipseq_variant=`
trains the hour's recipe) for `--minutes`.

A replica trains for `--minutes` too and then, if its greedy output on the validation split is
still mostly empty (the blank-only stage every CTC model starts in: a WER near 100 % there
says nothing about what the model learns), goes on until it leaves that stage or reaches
`--replica_max_minutes`, whichever comes first; the JSON says which.

What is reported, for each model:
  * the validation curve (WER of the model's validation mode, and for the replicas the share
    of empty hypotheses) against minutes and clips seen, and from it the minutes and clips to
    reach 50, 20 and 10 % validation WER (null where the run never did);
  * WER/CER of every decoding mode on the validation and on the test split; the mode reported
    as the model's result is the one best on validation, and its test WER is the comparison.
    The test split is never used to choose.

Each model runs in its own process pinned to one core (os.sched_setaffinity; TensorFlow
sizes its thread pools from the affinity mask), as many at once as there are cores, so every
model gets the same compute whatever else the wave holds. Every budget counts the whole run:
input pipeline, validation and checkpoints included.

The replicas follow LipNet's layout (Assael et al. 2016): 100x50 RGB mouth crops, Conv3D
32/64/96 with 3x5x5, 3x5x5, 3x3x3 kernels (the first with spatial stride 2), each followed by
a 1x2x2 max-pool, two bidirectional GRU 256 layers, a softmax over characters + blank, CTC
loss, Adam at LipNet's 1e-4; `lipnet_bn` adds batch norm and 3D spatial dropout 0.5 after each
convolution, as public ports do. They read the same prepared clips through the same input
pipeline and augmentation as lipseq and decode with TensorFlow's CTC greedy and beam search.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from bench.common import machine_info, write_results

FLAGS = flags.FLAGS
PROJECT_ROOT = Path(__file__).resolve().parents[1]
RECIPE = PROJECT_ROOT / "configs" / "grid_lipnet.py"
MODELS = ("lipseq", "lipnet", "lipnet_bn")
WER_THRESHOLDS = (50, 20, 10)
# A replica whose greedy output is empty for at least this share of validation clips is still
# in the blank-only stage.
BLANK_STAGE_EMPTY_SHARE = 0.5


def lipnet_replica(vocab_size: int, batch_norm: bool = False):
    """LipNet: frames [B, 75, 50, 100, 3] -> CTC logits [B, 75, vocab_size] (blank = 0)."""
    import keras

    inputs = keras.Input((None, 50, 100, 3))
    x = inputs
    for i, (filters, kernel) in enumerate(((32, (3, 5, 5)), (64, (3, 5, 5)), (96, (3, 3, 3)))):
        x = keras.layers.Conv3D(
            filters, kernel, strides=(1, 2, 2) if i == 0 else 1, padding="same"
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        if batch_norm:
            x = keras.layers.SpatialDropout3D(0.5)(x)
        x = keras.layers.MaxPooling3D((1, 2, 2))(x)
    x = keras.layers.TimeDistributed(keras.layers.Flatten(), name="features")(x)
    for _ in range(2):
        x = keras.layers.Bidirectional(keras.layers.GRU(256, return_sequences=True))(x)
    return keras.Model(inputs, keras.layers.Dense(vocab_size)(x))


def ctc_decode(logits, lengths, beam_width: int) -> list[list[int]]:
    """TensorFlow's CTC decoders over logits [B, T, V] whose blank is id 0 -> label ids."""
    import tensorflow as tf

    # TensorFlow's beam decoder takes the last class as blank: rotate id 0 to the end.
    time_major = tf.transpose(tf.roll(logits, shift=-1, axis=-1), [1, 0, 2])
    if beam_width > 1:
        decoded, _ = tf.nn.ctc_beam_search_decoder(time_major, lengths, beam_width, top_paths=1)
    else:
        decoded, _ = tf.nn.ctc_greedy_decoder(time_major, lengths)
    dense = tf.sparse.to_dense(decoded[0], default_value=-1).numpy()
    return [[int(i) + 1 for i in row if i >= 0] for row in dense]


def train_replica(name: str, prepared_dir: Path, minutes: float, workdir: Path) -> dict:
    """Trains one replica for `minutes` (everything counted), longer while it is in the blank
    stage (up to --replica_max_minutes), then scores validation and test in every mode."""
    import keras
    import tensorflow as tf

    from data_prep.characters import CharVocabulary
    from data_prep.records import read_manifest, split_files
    from pipelines.inputs.video import VideoAugmentation, make_video_dataset
    from pipelines.scoring import character_error_rate, word_error_rate
    from pipelines.tasks.lipreading import prepared_clip_batches

    started = time.monotonic()
    recipe = _recipe_config("rgb100")
    data = recipe.data
    keras.utils.set_random_seed(recipe.seed)
    vocabulary = CharVocabulary()
    manifest = read_manifest(prepared_dir, "lipreading")
    stats = manifest["normalisation"]
    augmentation = VideoAugmentation(
        flip=data.flip,
        brightness=data.brightness,
        contrast=data.contrast,
        time_masks=data.time_masks,
        max_time_mask=data.max_time_mask,
    )
    model = lipnet_replica(vocabulary.size, batch_norm=name == "lipnet_bn")
    optimizer = keras.optimizers.Adam(FLAGS.replica_learning_rate)

    @tf.function(reduce_retracing=True)
    def train_step(batch):
        with tf.GradientTape() as tape:
            logits = model(batch["inputs"], training=True)
            losses = tf.nn.ctc_loss(
                labels=batch["labels"],
                logits=logits,
                label_length=batch["target_lengths"] - 1,  # labels end with eos
                logit_length=batch["input_lengths"],
                logits_time_major=False,
                blank_index=0,
            )
            loss = tf.reduce_mean(losses)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tf.function(reduce_retracing=True)
    def logits_of(frames, lengths):
        from pipelines.inputs.video import inference_frames

        return model(inference_frames(frames, stats["mean"], stats["std"]), training=False)

    def transcribe(split: str, beam_width: int) -> tuple[list[str], list[str]]:
        references, hypotheses = [], []
        files = split_files(prepared_dir, manifest, split)
        for batch in prepared_clip_batches(files, recipe.batch_size):
            logits = logits_of(batch["frames"], batch["lengths"])
            for ids in ctc_decode(logits, batch["lengths"], beam_width):
                hypotheses.append(vocabulary.decode(ids))
            references.extend(t.decode() for t in batch["text"].numpy())
        return references, hypotheses

    deadline = started + 60.0 * minutes
    last_deadline = started + 60.0 * max(minutes, FLAGS.replica_max_minutes)
    steps = examples = epoch = 0
    curve = []
    next_eval = started + 60.0 * FLAGS.eval_every_minutes
    while True:  # the inner loop's break ends training; an exhausted dataset starts an epoch
        dataset = make_video_dataset(
            split_files(prepared_dir, manifest, data.train_split),
            mean=stats["mean"],
            std=stats["std"],
            batch_size=recipe.batch_size,
            training=True,
            vocabulary=vocabulary,
            augmentation=augmentation,
            seed=recipe.seed,
            epoch=epoch,
            bucket_boundaries=tuple(data.bucket_boundaries),
            shuffle_buffer=data.shuffle_buffer,
        )
        for batch in dataset:
            loss = float(train_step({k: batch[k] for k in _TRAIN_KEYS}))
            steps += 1
            examples += int(batch["input_lengths"].shape[0])
            now = time.monotonic()
            if steps % 25 == 0:
                print(
                    f"{name} step {steps} epoch {epoch} loss {loss:.3f} "
                    f"{(now - started) / 60:.1f}/{minutes:g} min",
                    flush=True,
                )
            if now >= next_eval:
                references, hypotheses = transcribe(data.eval_split, 1)
                curve.append(
                    {
                        "minutes": round((time.monotonic() - started) / 60, 2),
                        "step": steps,
                        "examples_seen": examples,
                        "validation_wer": round(word_error_rate(references, hypotheses), 2),
                        "empty_hypotheses": round(
                            sum(not h.strip() for h in hypotheses) / len(hypotheses), 3
                        ),
                    }
                )
                print(f"{name} validation {curve[-1]}", flush=True)
                next_eval += 60.0 * FLAGS.eval_every_minutes
            if now >= deadline and (now >= last_deadline or not in_blank_stage(curve)):
                break
        else:
            epoch += 1
            continue
        break
    train_minutes = (time.monotonic() - started) / 60
    scores = {}
    for split in (data.eval_split, data.test_split):
        for mode, width in (("ctc_greedy", 1), ("ctc_beam", FLAGS.beam_width)):
            references, hypotheses = transcribe(split, width)
            scores.setdefault(mode, {})[_split_key(split, data)] = {
                "wer": round(word_error_rate(references, hypotheses), 2),
                "cer": round(character_error_rate(references, hypotheses), 2),
                "clips": len(references),
            }
    return {
        "model": name,
        "parameters": int(model.count_params()),
        "train_minutes": round(train_minutes, 2),
        "planned_minutes": minutes,
        "max_minutes": max(minutes, FLAGS.replica_max_minutes),
        "stopped_because": stop_reason(curve, train_minutes, minutes),
        "steps": steps,
        "examples_seen": examples,
        "epochs": round(examples / manifest["splits"][data.train_split]["num_examples"], 1),
        "validation_mode": "ctc_greedy",
        "modes": scores,
        "validation_curve": curve,
    }


def in_blank_stage(curve: list[dict]) -> bool:
    """Whether the latest validation check found mostly empty greedy output (or none yet)."""
    return not curve or curve[-1]["empty_hypotheses"] >= BLANK_STAGE_EMPTY_SHARE


def stop_reason(curve: list[dict], train_minutes: float, minutes: float) -> str:
    """Why a replica's training ended, in words the JSON keeps."""
    stage = "still in the blank stage" if in_blank_stage(curve) else "out of the blank stage"
    if train_minutes < minutes + FLAGS.eval_every_minutes:
        return f"planned {minutes:g} minutes, {stage}"
    if in_blank_stage(curve):
        return f"--replica_max_minutes={FLAGS.replica_max_minutes:g} reached, {stage}"
    return "left the blank stage after the planned minutes"


def _split_key(split: str, data) -> str:
    return "validation" if split == data.eval_split else "test"


_TRAIN_KEYS = ("inputs", "input_lengths", "labels", "target_lengths")


def _recipe_config(variant: str = ""):
    from configs import grid_lipnet

    return grid_lipnet.get_config(variant)


def train_lipseq(minutes: float, workdir: Path, variant: str = "") -> dict:
    """lipseq's recipe (a variant of it) through its own commands: train for `minutes`,
    export, evaluate."""
    lipseq = [sys.executable, "-m", "pipelines"]
    train = workdir / "train"
    export = workdir / "export"
    reports = {split: workdir / f"eval_{split}.json" for split in ("validation", "test")}
    _run(
        [
            *lipseq,
            "train",
            f"--config={RECIPE}{':' + variant if variant else ''}",
            f"--workdir={train}",
            f"--config.max_train_minutes={minutes}",
            "--config.eval_every=200",
        ]
    )
    _run([*lipseq, "export", f"--workdir={train}", f"--export_dir={export}"])
    # Unconstrained modes, as the replicas decode (the grammar twins are in README's table).
    modes = "--modes=ctc_greedy,ctc_beam,attention,joint"
    for split, report in reports.items():
        _run(
            [
                *lipseq,
                "evaluate",
                f"--saved_model={export}",
                f"--split={split}",
                modes,
                f"--output={report}",
            ]
        )
    summary = json.loads((train / "train_summary.json").read_text())
    curve = [
        {
            "minutes": row["train_minutes"],
            "step": row["step"],
            "examples_seen": row["examples_seen"],
            "validation_wer": round(row["val_wer"], 2),
        }
        for row in _jsonl(train / "metrics.jsonl")
        if "val_wer" in row
    ]
    config = _recipe_config(variant)
    return {
        "model": "lipseq",
        "config": str(RECIPE.relative_to(PROJECT_ROOT)) + (f":{variant}" if variant else ""),
        "summary": summary,
        # The mode the training loop validates with ("" is greedy CTC where there is a CTC head).
        "validation_mode": config.decode.validation_mode or "ctc_greedy",
        "modes": _lipseq_scores(reports),
        "validation_curve": curve,
    }


def _lipseq_scores(reports: dict[str, Path]) -> dict:
    """mode -> split -> WER, CER and clips, from `lipseq evaluate`'s reports."""
    scores = {}
    for split, report in reports.items():
        summary = json.loads(report.read_text())["summary"]
        for mode, values in summary["modes"].items():
            scores.setdefault(mode, {})[split] = {
                "wer": values["wer"],
                "cer": values["cer"],
                "clips": summary["num_clips"],
            }
    return scores


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, cwd=PROJECT_ROOT)


def _ensure_prepared(variant: str) -> Path:
    config = _recipe_config(variant)
    prepared = PROJECT_ROOT / config.data.prepared_dir
    if not (prepared / "manifest.json").exists():
        suffix = f":{variant}" if variant else ""
        _run([sys.executable, "-m", "pipelines", "prepare", f"--config={RECIPE}{suffix}"])
    return prepared


def run_one(name: str, minutes: float, workdir: Path, variant: str = "") -> dict:
    """Trains and scores one model in this process (the child side of `run`)."""
    shutil.rmtree(workdir, ignore_errors=True)  # a fresh run: lipseq train would resume
    workdir.mkdir(parents=True, exist_ok=True)
    if name == "lipseq":
        return train_lipseq(minutes, workdir, variant)
    return train_replica(name, _ensure_prepared("rgb100"), minutes, workdir)


def run(models: list[str], minutes: float, output_dir: str, workdir: str) -> Path:
    """Runs the models side by side, one core each, and writes <output_dir>/quality.json."""
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise app.UsageError(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    _ensure_prepared("")
    _ensure_prepared("rgb100")
    cores = sorted(os.sched_getaffinity(0))
    workdir = Path(workdir)
    results = {}
    for start in range(0, len(models), len(cores)):
        wave = models[start : start + len(cores)]
        children = []
        for core, name in zip(cores, wave, strict=False):
            out = workdir / name / "result.json"
            command = [
                sys.executable,
                "-m",
                "bench.quality_bench",
                f"--child={name}",
                f"--minutes={minutes}",
                f"--workdir={workdir}",
                f"--replica_learning_rate={FLAGS.replica_learning_rate}",
                f"--replica_max_minutes={FLAGS.replica_max_minutes}",
                f"--beam_width={FLAGS.beam_width}",
                f"--eval_every_minutes={FLAGS.eval_every_minutes}",
                f"--lipseq_variant={FLAGS.lipseq_variant}",
            ]
            child = subprocess.Popen(
                command, cwd=PROJECT_ROOT, preexec_fn=lambda c=core: os.sched_setaffinity(0, {c})
            )
            children.append((name, child, out))
        for name, child, out in children:
            if child.wait() != 0:
                raise RuntimeError(f"{name} failed with exit code {child.returncode}")
            results[name] = json.loads(out.read_text())
    payload = {
        "minutes_each": minutes,
        "replica_max_minutes": max(minutes, FLAGS.replica_max_minutes),
        "cores_each": 1,
        "splits": "GRID s1 validation (choice of mode) and test (the result), crc32 rule",
        "chosen_on_validation": {n: chosen_mode(r["modes"]) for n, r in results.items()},
        "to_reach_validation_wer": {n: to_reach(r["validation_curve"]) for n, r in results.items()},
        "models": results,
    }
    payload["test_wer_ratio_to_lipseq"] = ratios_to_lipseq(payload["chosen_on_validation"], results)
    return write_results("quality", payload, output_dir)


def chosen_mode(modes: dict) -> dict:
    """The decoding mode with the lowest validation WER, and its test scores."""
    mode = min(modes, key=lambda m: modes[m]["validation"]["wer"])
    return {"mode": mode, **{split: modes[mode][split] for split in ("validation", "test")}}


def to_reach(curve: list[dict]) -> dict:
    """Minutes and clips seen at the first validation check at or under each WER threshold
    (null where the run never got there)."""
    reached = {}
    for threshold in WER_THRESHOLDS:
        first = next((row for row in curve if row["validation_wer"] <= threshold), None)
        reached[f"{threshold}%"] = (
            None if first is None else {k: first[k] for k in ("minutes", "examples_seen")}
        )
    return reached


def ratios_to_lipseq(chosen: dict, results: dict) -> dict:
    """Each replica's test WER over lipseq's (chosen modes). Null for a replica still in the
    blank stage: its WER there is that of empty output, so the ratio would compare nothing."""
    if "lipseq" not in chosen:
        return {}
    lipseq = max(chosen["lipseq"]["test"]["wer"], 1e-9)
    return {
        name: None
        if in_blank_stage(results[name]["validation_curve"])
        else round(chosen[name]["test"]["wer"] / lipseq, 2)
        for name in chosen
        if name != "lipseq"
    }


def define_flags() -> None:
    flags.DEFINE_list("models", list(MODELS), f"Models to train: {', '.join(MODELS)}.")
    flags.DEFINE_float("minutes", 30.0, "Wall minutes of training for each model.")
    flags.DEFINE_float(
        "replica_max_minutes",
        120.0,
        "A replica still in the blank stage after --minutes trains on until it leaves it or "
        "until this many minutes in all.",
    )
    flags.DEFINE_string("output_dir", "bench/results", "Where quality.json goes.")
    flags.DEFINE_string("workdir", "runs/bench_quality", "Scratch: workdirs and exports.")
    flags.DEFINE_float("replica_learning_rate", 1e-4, "Adam rate of the replicas (LipNet's).")
    flags.DEFINE_integer("beam_width", 8, "Beam width of the replicas' CTC beam search.")
    flags.DEFINE_float("eval_every_minutes", 5.0, "Replicas: validation WER every N minutes.")
    flags.DEFINE_string(
        "lipseq_variant",
        "short_budget",
        "Variant of configs/grid_lipnet.py lipseq trains ('' for the hour's recipe).",
    )
    flags.DEFINE_string("child", None, "Internal: train this one model in this process.")


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.child:
        workdir = Path(FLAGS.workdir) / FLAGS.child
        result = run_one(FLAGS.child, FLAGS.minutes, workdir, FLAGS.lipseq_variant)
        result["machine"] = machine_info()
        result["core"] = sorted(os.sched_getaffinity(0))
        (workdir / "result.json").write_text(json.dumps(result, indent=1, default=_plain))
        return
    print(run(FLAGS.models, FLAGS.minutes, FLAGS.output_dir, FLAGS.workdir))


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)


if __name__ == "__main__":
    define_flags()
    app.run(main)
