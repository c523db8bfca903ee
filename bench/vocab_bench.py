"""Large output vocabularies: a training step's time and peak memory, full against sampled
softmax, at 10k, 50k and 200k output words.

    python -m bench.vocab_bench --output_dir=bench/results

The model is the Multi30k config's (configs/multi30k_gru_attention.py: 2-layer bidirectional
GRU encoder, GRU decoder of 512 units with Luong attention) on random batches of 64 sentences,
20 source and 20 target tokens. Each (vocabulary, softmax) pair runs in a fresh process, so its
peak memory is its own: the step is traced and warmed up outside the timed window, then timed
in 3 rounds of 3 steps (median, min-max). All pairs run back to back in one command, and each
vocabulary's sampled/full ratios come from that run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from absl import app, flags

from bench.common import spread, write_results

FLAGS = flags.FLAGS

VOCABULARIES = (10_000, 50_000, 200_000)
NUM_SAMPLED = 512
BATCH, LENGTH, SOURCE_VOCAB = 64, 20, 8_000

_ONE_PAIR = """
import json, sys, time
import numpy as np
import tensorflow as tf
from bench.common import peak_rss_mb
from bench.lipreading_bench import training_step
from configs import multi30k_gru_attention
from models.seq2seq import build_model

vocab, sampled, batch_size, length, source_vocab = (int(x) for x in sys.argv[1:6])
config = multi30k_gru_attention.get_config().model
config.sampled_softmax = sampled
tf.keras.utils.set_random_seed(0)
model = build_model(config, source_vocab, vocab)
rng = np.random.default_rng(0)
# Zipf-like target ids, as words are (the log-uniform sampler assumes falling frequency).
labels = np.minimum(rng.zipf(1.1, size=(batch_size, length)) + 3, vocab - 1).astype(np.int32)
batch = {
    "inputs": tf.constant(rng.integers(4, source_vocab, size=(batch_size, length)), tf.int32),
    "input_lengths": tf.fill([batch_size], length),
    "targets": tf.constant(np.concatenate([np.full((batch_size, 1), 2), labels[:, :-1]], 1)),
    "labels": tf.constant(labels),
    "target_lengths": tf.fill([batch_size], length),
}
step = training_step(model)
for _ in range(2):
    step(batch)
seconds = []
for _ in range(3):
    started = time.perf_counter()
    for _ in range(3):
        float(step(batch))
    seconds.append((time.perf_counter() - started) / 3)
print(json.dumps({"seconds_per_step": seconds, "peak_rss_mb": peak_rss_mb()}))
"""


def measure_pair(vocab: int, sampled: int) -> dict:
    """One (vocabulary, softmax) pair in a fresh process: step seconds and peak memory."""
    arguments = [str(v) for v in (vocab, sampled, BATCH, LENGTH, SOURCE_VOCAB)]
    out = subprocess.run(
        [sys.executable, "-c", _ONE_PAIR, *arguments], capture_output=True, text=True
    )
    if out.returncode != 0:
        return {"ok": False, "error": out.stderr[-600:]}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = result["seconds_per_step"]
    return {
        "ok": True,
        "seconds_per_step": spread(seconds, digits=3),
        "target_tokens_per_second": round(BATCH * LENGTH / statistics.median(seconds), 1),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
    }


def run(output_dir: str) -> Path:
    """Writes <output_dir>/vocabulary.json."""
    rows = []
    for vocab in VOCABULARIES:
        full, sampled = measure_pair(vocab, 0), measure_pair(vocab, NUM_SAMPLED)
        row = {"output_words": vocab, "full_softmax": full, "sampled_softmax": sampled}
        if full["ok"] and sampled["ok"]:
            row["step_time_sampled_over_full"] = round(
                sampled["seconds_per_step"]["median"] / full["seconds_per_step"]["median"], 3
            )
            row["peak_memory_sampled_over_full"] = round(
                sampled["peak_rss_mb"] / full["peak_rss_mb"], 3
            )
        rows.append(row)
        print(json.dumps(row), flush=True)
    setup = {
        "config": "configs/multi30k_gru_attention.py (model)",
        "batch": BATCH,
        "source_tokens": LENGTH,
        "target_tokens": LENGTH,
        "source_vocabulary": SOURCE_VOCAB,
        "num_sampled": NUM_SAMPLED,
        "sampler": "log-uniform (tf.nn.sampled_softmax_loss default)",
    }
    return write_results("vocabulary", {"setup": setup, "rows": rows}, output_dir)


def define_flags() -> None:
    """Defines this benchmark's flags (only when run as a program)."""
    flags.DEFINE_string("output_dir", "bench/results", "Where the JSON goes.")


def main(argv: list[str]) -> None:
    del argv
    print(run(FLAGS.output_dir))


if __name__ == "__main__":
    define_flags()
    app.run(main)
