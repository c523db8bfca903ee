"""Translates text with an exported SavedModel.

    echo "a dog runs on the beach ." | python -m pipelines.translate --model=runs/demo/export
    python -m pipelines.translate --model=... --input=in.txt --output=out.txt [--mode=greedy]
"""

import sys
from pathlib import Path

from absl import app, flags

from pipelines.evaluate import MODES, load_saved_model_translate, read_text_lines
from pipelines.translator import translate_all

_MODEL = flags.DEFINE_string("model", None, "Exported SavedModel directory.")
_INPUT = flags.DEFINE_string("input", None, "Input file, one sentence a line [stdin].")
_OUTPUT = flags.DEFINE_string("output", None, "Output file [stdout].")
_MODE = flags.DEFINE_enum("mode", "beam", MODES, "Search: beam or greedy.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Sentences per batch.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    sentences = (
        read_text_lines(_INPUT.value) if _INPUT.value
        else [line.rstrip("\r\n") for line in sys.stdin]
    )
    translate = load_saved_model_translate(_MODEL.value, _MODE.value)
    translations = translate_all(translate, sentences, _BATCH_SIZE.value)["text"]
    text = "".join(t + "\n" for t in translations)
    if _OUTPUT.value:
        Path(_OUTPUT.value).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    flags.mark_flags_as_required(["model"])
    app.run(main)
