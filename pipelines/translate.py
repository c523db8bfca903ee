"""Translates text with an exported SavedModel.

echo "a dog runs on the beach ." | python -m pipelines.translate --model=runs/demo/export
python -m pipelines.translate --model=... --input=in.txt --output=out.txt [--mode=greedy]
"""

import sys
from pathlib import Path

from absl import app, flags

from pipelines.evaluate import MODES, load_saved_model_translate, read_text_lines
from pipelines.translator import translate_all

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this entry point's flags (only when run as a program)."""
    flags.DEFINE_string("model", None, "Exported SavedModel directory.")
    flags.DEFINE_string("input", None, "Input file, one sentence a line [stdin].")
    flags.DEFINE_string("output", None, "Output file [stdout].")
    flags.DEFINE_enum("mode", "beam", MODES, "Search: beam or greedy.")
    flags.DEFINE_integer("batch_size", 64, "Sentences per batch.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    sentences = (
        read_text_lines(FLAGS.input) if FLAGS.input else [line.rstrip("\r\n") for line in sys.stdin]
    )
    translate = load_saved_model_translate(FLAGS.model, FLAGS.mode)
    translations = translate_all(translate, sentences, FLAGS.batch_size)["text"]
    text = "".join(t + "\n" for t in translations)
    if FLAGS.output:
        Path(FLAGS.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["model"])
    app.run(main)
