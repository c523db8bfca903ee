"""Translation benchmarks: training throughput, input pipeline speed, decoding speed.

    python -m bench.text_bench --output_dir=bench/results [--model_workdir=runs/multi30k/train]

Figures (written to <output_dir>/translation.json):
  * training: target tokens/s and sentences/s of the compiled train step on the Multi30k config
    (the embedded toy corpus when ../shared/data is absent);
  * training: median, min and max over the 10-step windows of a resumed run, after a first
    run that compiled and warmed up (the resumed run's first window, which traces, dropped);
  * input pipeline: batches/s of tf.data alone (warmed up, 3 timed stretches), against the
    train step's median rate (measured after it, not beside it);
  * decoding: sentences/s of the exported SavedModel, greedy and beam 5, and of a reference
    decoder that calls the model one step at a time from a Python loop, each warmed up, then
    taking turns in 3 rounds over the same sentences; the speed-up is taken within each round.
"""

import functools
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import app, flags

from bench.common import peak_rss_mb, say, write_results
from bench.common import ratio_spread as common_ratio_spread
from bench.common import spread as common_spread
from configs import demo_toy, multi30k_gru_attention
from data_prep.paths import shared_data_dir
from data_prep.records import read_manifest
from data_prep.synthetic import toy_language
from data_prep.translation import prepare_translation
from models.search import max_decode_lengths
from pipelines.inference.translation import load_translate, translate_all
from pipelines.inputs.text import make_config_dataset
from pipelines.serving.export import export_model
from pipelines.training.loop import train
from pipelines.training.restore import restore_model

FLAGS = flags.FLAGS
spread = functools.partial(common_spread, digits=2)
ratio_spread = functools.partial(common_ratio_spread, digits=2)


def bench_config(scratch: Path):
    """The Multi30k config when the corpus is present, else the toy config; data prepared."""
    if (shared_data_dir() / "multi30k" / "train.en.gz").is_file():
        config, corpus = multi30k_gru_attention.get_config(), "multi30k"
    else:
        config, corpus = demo_toy.get_config(), "toy"
        config.data.input_dir = str(scratch / "raw")
        toy_language.write_corpus(config.data.input_dir)
    prepared = Path(config.data.prepared_dir)
    if not (prepared / "manifest.json").is_file():
        config.data.prepared_dir = str(scratch / "data")
        prepare_translation(config)
    return config, corpus


def bench_training(config, warmup_steps: int = 10, steps: int = 60, window: int = 10) -> dict:
    """Throughput of the compiled training step, and of the input pipeline alone.

    A first run compiles and warms up; a resumed run (which traces its step again) logs a
    rate every `window` steps. Its first window holds that tracing, so it is dropped: the
    figures are the median (and min, max) of the windows after it.
    """
    prepared = Path(config.data.prepared_dir)
    manifest = read_manifest(prepared, "translation")
    scratch = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        config = config.copy_and_resolve_references()
        config.num_train_steps = warmup_steps
        config.eval_every = 0
        config.log_every = warmup_steps
        config.checkpoint_every = 10**9
        train(config, scratch)  # prepares caches; the resumed run below traces anew
        config.num_train_steps = warmup_steps + steps
        config.log_every = window
        started = time.monotonic()
        train(config, scratch)
        seconds = time.monotonic() - started
        windows = [
            r
            for r in _metrics(scratch)
            if "target_tokens_per_second" in r and r["step"] > warmup_steps + window
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def window_spread(key: str) -> dict:
        return spread([r[key] for r in windows])

    pipeline = input_pipeline_rates(config, prepared, manifest)
    training = window_spread("steps_per_second")
    return {
        "steps_timed": window * len(windows),
        "windows_timed": len(windows),
        "wall_seconds_incl_setup": round(seconds, 1),
        "target_tokens_per_second": window_spread("target_tokens_per_second"),
        "sentences_per_second": window_spread("sentences_per_second"),
        "train_steps_per_second": training,
        "input_pipeline_batches_per_second": pipeline["batches_per_second"],
        "input_pipeline_target_tokens_per_second": pipeline["target_tokens_per_second"],
        # Measured after the training run, not beside it: how many times over the pipeline
        # alone could feed the step (medians of each).
        "input_pipeline_headroom": round(
            pipeline["batches_per_second"]["median"] / training["median"], 1
        ),
    }


def input_pipeline_rates(
    config, prepared: Path, manifest: dict, repeats: int = 3, batches: int = 200
) -> dict:
    """Batches/s and target tokens/s of the training input pipeline alone: built and warmed up
    (its first batches fill shuffle buffers) outside the timed window, then `repeats` timed
    stretches of `batches` batches from the same iterator (median, min, max)."""
    dataset = make_config_dataset(config, prepared, manifest, config.data.train_split, True)
    iterator = iter(dataset.repeat())
    for _ in range(20):
        next(iterator)
    rates, token_rates = [], []
    for _ in range(repeats):
        tokens = 0
        started = time.perf_counter()
        for _ in range(batches):
            tokens += int(tf.reduce_sum(next(iterator)["target_lengths"]))
        seconds = time.perf_counter() - started
        rates.append(batches / seconds)
        token_rates.append(tokens / seconds)
    return {
        "batches_per_second": spread(rates),
        "target_tokens_per_second": spread(token_rates),
        "repeats": repeats,
        "batches_per_repeat": batches,
    }


def _metrics(workdir: Path) -> list[dict]:
    import json

    path = workdir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def python_loop_greedy(model, translator, sentences: list[str], batch_size: int) -> list:
    """Reference decoder: one eager model call per output step from a Python loop, doing the
    SavedModel's greedy work: the same batches as translate_all (sorted by length) and each
    sentence's own step limit (models.search.max_decode_lengths), where eos is forced, so a
    sentence that runs to its limit reads the same text."""
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    outputs = [None] * len(sentences)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        inputs, lengths = translator.encode_source(tf.constant([sentences[i] for i in chunk]))
        memory, memory_lengths, encoder_state = model.encode(inputs, lengths)
        prepared = model.decoder.prepare_memory(memory, memory_lengths)
        state = model.decoder.initial_state(encoder_state, prepared)
        tokens = tf.fill([inputs.shape[0]], translator.bos_id)
        limits = max_decode_lengths(
            lengths, translator.max_length_ratio, translator.max_decode_length
        ).numpy()
        done = np.zeros(inputs.shape[0], bool)
        steps = []
        for step in range(int(limits.max())):
            logits, state, _ = model.decoder.step(tokens, state, prepared)
            next_tokens = np.argmax(logits.numpy(), axis=-1).astype(np.int32)
            next_tokens[step + 1 >= limits] = translator.eos_id
            steps.append(next_tokens)
            done |= next_tokens == translator.eos_id
            if done.all():
                break
            tokens = tf.constant(next_tokens)
        for index, ids in zip(chunk, np.stack(steps, axis=1).tolist(), strict=True):
            outputs[index] = ids
    return outputs


def _until_eos(ids: list[int], translator) -> str:
    """Detokenised text of one greedy output, up to (without) its first eos."""
    if translator.eos_id in ids:
        ids = ids[: ids.index(translator.eos_id)]
    return translator.detokenize(tf.ragged.constant([ids], dtype=tf.int32)).numpy()[0].decode()


def bench_decoding(
    workdir: Path, config, num_sentences: int, batch_size: int, rounds: int = 3
) -> dict:
    """Sentences/s of the SavedModel (greedy, beam) and of the Python-loop reference: each
    warmed up, then the three take turns over the same sentences in each of `rounds` rounds
    (median, min, max); the speed-up over the loop is taken within each round."""
    prepared = Path(config.data.prepared_dir)
    split = (
        config.data.test_split
        if (prepared / f"{config.data.test_split}.source.txt").exists()
        else config.data.eval_split
    )
    sentences = (prepared / f"{split}.source.txt").read_text().splitlines()[:num_sentences]
    export_dir = Path(tempfile.mkdtemp(prefix="bench-export-")) / "export"
    export_model(workdir, export_dir)
    results = {"split": split, "num_sentences": len(sentences), "batch_size": batch_size}
    try:
        restored_config, task, model, _ = restore_model(workdir)
        translator = task.translator(model)
        decoders = {
            mode: functools.partial(translate_all, load_translate(export_dir, mode))
            for mode in ("greedy", "beam")
        }
        decoders["python_loop_greedy"] = functools.partial(python_loop_greedy, model, translator)
        outputs, seconds = {}, {name: [] for name in decoders}
        for decode in decoders.values():
            decode(sentences[:batch_size], batch_size)  # warm-up: traces each batch shape
        for _ in range(rounds):
            for name, decode in decoders.items():
                started = time.perf_counter()
                outputs[name] = decode(sentences, batch_size)
                seconds[name].append(time.perf_counter() - started)
        results.update(decoding_figures(outputs, seconds, translator, len(sentences)))
        results["rounds"] = rounds
        results["beam_size"] = int(restored_config.decode.beam_size)
    finally:
        shutil.rmtree(export_dir.parent, ignore_errors=True)
    return results


def decoding_figures(outputs: dict, seconds: dict, translator, count: int) -> dict:
    """Rates, mean output words and the loop's agreement with the SavedModel's greedy text."""
    results = {}
    for mode in ("greedy", "beam"):
        results[f"saved_model_{mode}_sentences_per_second"] = spread(
            [count / value for value in seconds[mode]]
        )
        texts = outputs[mode]["text"]
        results[f"saved_model_{mode}_mean_words"] = round(
            float(np.mean([len(t.split()) for t in texts])), 2
        )
    loop = seconds["python_loop_greedy"]
    # Equal work: the reference decodes the same sentences to the same text.
    loop_texts = [_until_eos(ids, translator) for ids in outputs["python_loop_greedy"]]
    greedy_texts = outputs["greedy"]["text"]
    same = sum(a == b for a, b in zip(loop_texts, greedy_texts, strict=True))
    results["python_loop_greedy_same_text_as_saved_model"] = round(same / count, 4)
    results["python_loop_greedy_sentences_per_second"] = spread([count / value for value in loop])
    results["speedup_saved_model_greedy_vs_python_loop"] = ratio_spread(loop, seconds["greedy"])
    return results


def run(output_dir: str, model_workdir: str | None, num_sentences: int = 500) -> Path:
    """Runs every translation benchmark and writes translation.json."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-text-"))
    try:
        config, corpus = bench_config(scratch)
        results = {
            "corpus": corpus,
            "config": "multi30k_gru_attention" if corpus == "multi30k" else "demo_toy",
        }
        say(f"translation: training throughput on {corpus}")
        results["training"] = bench_training(config)
        workdir = Path(model_workdir) if model_workdir else None
        if not workdir or not (workdir / "config.json").is_file():
            say("translation: no trained model given, training a short one for decoding speed")
            workdir = scratch / "model"
            short = config.copy_and_resolve_references()
            short.num_train_steps, short.eval_every = 300, 0
            train(short, workdir)
        say("translation: decoding speed, SavedModel greedy and beam beside a Python loop")
        results["decoding"] = bench_decoding(workdir, config, num_sentences, 64)
        results["decoding"]["model_workdir"] = str(workdir)
        results["peak_rss_mb"] = round(peak_rss_mb(), 1)
        return write_results("translation", results, output_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def define_flags() -> None:
    """Defines this benchmark's flags (only when run as a program)."""
    flags.DEFINE_string("output_dir", "bench/results", "Where the JSON goes.")
    flags.DEFINE_string(
        "model_workdir",
        "runs/multi30k/train",
        "Trained run to measure decoding on (a short one is trained if absent).",
    )
    flags.DEFINE_integer("num_sentences", 500, "Sentences decoded per measurement.")


def main(argv: list[str]) -> None:
    del argv
    print(run(FLAGS.output_dir, FLAGS.model_workdir, FLAGS.num_sentences))


if __name__ == "__main__":
    define_flags()
    app.run(main)
