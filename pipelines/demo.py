"""`make demo`: the whole text path on the embedded toy language pair, no outside data.

generate corpus -> prepare (SentencePiece + shards) -> train -> export SavedModel -> BLEU.
Fails (exit 1) when the test BLEU is below --min_bleu, so the demo proves learning.
"""

import time
from pathlib import Path

from absl import app, flags, logging

from configs import demo_toy
from data_prep import synthetic_text
from pipelines.evaluate import evaluate, load_saved_model_translate, summary_line, write_report
from pipelines.export import export_translation
from pipelines.prepare import prepare_translation
from pipelines.train import train

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this entry point's flags (only when run as a program)."""
    flags.DEFINE_string("workdir", "runs/demo", "Where the demo writes everything.")
    flags.DEFINE_float("min_bleu", 90.0, "Fail when test BLEU ends below this.")
    flags.DEFINE_integer("train_steps", None, "Override the config's step count.")


def run_demo(workdir: Path, train_steps: int | None = None) -> dict:
    """Runs every stage; returns the evaluation report of the exported model on the test split."""
    timings = {}
    config = demo_toy.get_config()
    config.data.input_dir = str(workdir / "raw")
    config.data.prepared_dir = str(workdir / "data")
    if train_steps:
        config.num_train_steps = train_steps

    started = time.monotonic()
    synthetic_text.write_corpus(config.data.input_dir, seed=config.seed)
    prepare_translation(config)
    timings["prepare"] = time.monotonic() - started

    started = time.monotonic()
    train(config, workdir / "train")
    timings["train"] = time.monotonic() - started

    started = time.monotonic()
    export_dir = export_translation(workdir / "train", workdir / "export")
    timings["export"] = time.monotonic() - started

    started = time.monotonic()
    data = Path(config.data.prepared_dir)
    sources = (data / "test.source.txt").read_text(encoding="utf-8").splitlines()
    references = (data / "test.target.txt").read_text(encoding="utf-8").splitlines()
    report = evaluate(load_saved_model_translate(export_dir, "beam"), sources, references)
    report["summary"].update(mode="beam", model=str(export_dir))
    timings["evaluate"] = time.monotonic() - started
    report["summary"]["stage_seconds"] = {k: round(v, 1) for k, v in timings.items()}
    write_report(report, workdir / "eval_test.json")
    return report


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    workdir = Path(FLAGS.workdir)
    report = run_demo(workdir, FLAGS.train_steps)
    summary = report["summary"]
    for example in report["sentences"][:3]:
        print(
            f"  source:     {example['source']}\n  reference:  {example['reference']}\n"
            f"  hypothesis: {example['hypothesis']}\n"
        )
    print(f"stage seconds: {summary['stage_seconds']}")
    print(f"toy test set: {summary_line(summary)}")
    print(f"outputs: {workdir}/ (export/, train/training_curves.png, eval_test.json)")
    if summary["bleu"] < FLAGS.min_bleu:
        logging.error("test BLEU %.2f is below --min_bleu=%.1f", summary["bleu"], FLAGS.min_bleu)
        raise SystemExit(1)


if __name__ == "__main__":
    define_flags()
    app.run(main)
