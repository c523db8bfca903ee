"""Candidate-list decoding against full beam search, on one word-level translation export:
BLEU, chrF and lowercased BLEU of each on the test set, and their speed side by side.

    python -m bench.candidate_bench --export=runs/multi30k_words/export \
        --source=../shared/data/multi30k/test_2016_flickr.en.gz \
        --reference=../shared/data/multi30k/test_2016_flickr.de.gz

The two signatures translate the whole test set in turn, --rounds times after one warm-up
each (tracing); speed is sentences per second, median and range over the rounds, and the
ratio of the two speeds taken within each round (median and range).
Writes bench/results/<name>.json.
"""

from __future__ import annotations

import time

from absl import app, flags

from bench.common import ratio_spread, spread, write_results
from pipelines.inference.translation import load_translate_modes, translate_all
from pipelines.scoring import read_text_lines, score_translations

FLAGS = flags.FLAGS
MODES = ("beam", "beam_candidates")


def run(export_dir, source, reference, rounds: int, name: str, output_dir: str):
    sources, references = read_text_lines(source), read_text_lines(reference)
    functions = load_translate_modes(export_dir, MODES)
    quality, speeds = {}, {mode: [] for mode in MODES}
    for mode, translate in functions.items():
        hypotheses = translate_all(translate, sources)["text"]  # warm-up, and the scored run
        summary = score_translations(sources, hypotheses, references)["summary"]
        quality[mode] = {k: summary[k] for k in ("bleu", "chrf", "bleu_lowercased")}
    for _ in range(rounds):
        for mode, translate in functions.items():
            started = time.perf_counter()
            translate_all(translate, sources)
            speeds[mode].append(len(sources) / (time.perf_counter() - started))
    speed = {mode: spread(values) for mode, values in speeds.items()}
    results = {
        "export": str(export_dir),
        "sentences": len(sources),
        "rounds": rounds,
        "quality": quality,
        "sentences_per_second": speed,
        # Taken within each round, where both signatures saw the same host.
        "speed_ratio_candidates_over_full": ratio_spread(
            speeds["beam_candidates"], speeds["beam"], 2
        ),
    }
    return write_results(name, results, output_dir)


def define_flags() -> None:
    flags.DEFINE_string("export", None, "A word-level translation export (beam_candidates).")
    flags.DEFINE_string("source", None, "Source sentences, one a line (plain or .gz).")
    flags.DEFINE_string("reference", None, "Reference translations, line-aligned.")
    flags.DEFINE_integer("rounds", 3, "Timed rounds per signature.", lower_bound=1)
    flags.DEFINE_string("name", "candidate_lists", "Results file name.")
    flags.DEFINE_string("output_dir", "bench/results", "Where the JSON goes.")
    flags.mark_flags_as_required(["export", "source", "reference"])


def main(argv: list[str]) -> None:
    del argv
    print(
        run(FLAGS.export, FLAGS.source, FLAGS.reference, FLAGS.rounds, FLAGS.name, FLAGS.output_dir)
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
