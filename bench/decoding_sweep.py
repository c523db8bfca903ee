"""Attention decoding's beam size, length penalty and grammar on a prepared lip-reading split,
the trained model restored once from its workdir (an export fixes them at export time).

    python -m bench.decoding_sweep --workdir=runs/grid/train --split=validation

Writes bench/results/decoding_sweep.json: WER/CER and seconds of each setting.
"""

from __future__ import annotations

import time

from absl import app, flags

from bench.common import write_results
from pipelines.scoring import character_error_rate, word_error_rate
from pipelines.signatures.transcriber import transcribe_batches
from pipelines.tasks.lipreading import read_prepared_clips
from pipelines.training.restore import restore_model

FLAGS = flags.FLAGS
# (beam size, length penalty, GRID grammar)
SETTINGS = ((1, 0.0, False), (4, 0.0, False), (8, 0.0, False), (16, 0.0, False),
            (8, 0.6, False), (8, 1.0, False), (16, 0.0, True))  # fmt: skip


def sweep(workdir: str, split: str, checkpoint: str) -> dict:
    config, task, model, path = restore_model(workdir, checkpoint)
    clips = read_prepared_clips(config.data.prepared_dir, split)
    references = [clip["text"] for clip in clips]
    rows = []
    for beam, penalty, grammar in SETTINGS:
        config.decode.beam_size, config.decode.length_penalty = beam, penalty
        function = task.transcriber(model, grammar=grammar).functions["attention"]
        started = time.monotonic()
        hypotheses = transcribe_batches(function, [clip["frames"] for clip in clips])
        rows.append(
            {
                "beam_size": beam,
                "length_penalty": penalty,
                "grammar": grammar,
                "wer": round(word_error_rate(references, hypotheses), 2),
                "cer": round(character_error_rate(references, hypotheses), 2),
                "seconds_with_tracing": round(time.monotonic() - started, 1),
            }
        )
        print(rows[-1], flush=True)
    return {"checkpoint": str(path), "split": split, "clips": len(clips), "settings": rows}


def main(argv):
    del argv
    results = sweep(FLAGS.workdir, FLAGS.split, FLAGS.checkpoint)
    print(write_results("decoding_sweep", results, FLAGS.output_dir))


if __name__ == "__main__":
    flags.DEFINE_string("workdir", "runs/grid/train", "Training run to restore.")
    flags.DEFINE_string("checkpoint", "latest", "latest | best | a checkpoint path.")
    flags.DEFINE_string("split", "validation", "Prepared split to decode.")
    flags.DEFINE_string("output_dir", "bench/results", "Where the JSON goes.")
    app.run(main)
