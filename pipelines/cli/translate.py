"""lipseq translate --model=D [--input=F] [--output=F]: translate text with an export.

echo "a dog runs on the beach ." | lipseq translate --model=runs/demo/export
"""

import sys

from absl import flags

from data_prep.atomic import write_text_atomic
from pipelines.cli.common import no_arguments
from pipelines.inference.translation import MODES, load_translate, translate_all
from pipelines.scoring import read_text_lines

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define = {"flag_values": flag_values}
    flags.DEFINE_string("model", None, "Exported translation SavedModel directory.", **define)
    flags.DEFINE_string(
        "input", None, "Input file, one sentence a line (.gz ok) [stdin].", **define
    )
    flags.DEFINE_string("output", None, "Output file, written atomically [stdout].", **define)
    flags.DEFINE_enum(
        "mode",
        "beam",
        list(MODES),
        "Search: beam, greedy, beam_lm (exports with a language model) or beam_candidates "
        "(word-level exports with a dictionary).",
        **define,
    )
    flags.DEFINE_integer("batch_size", 64, "Sentences per batch.", **define)
    flags.mark_flag_as_required("model", flag_values=flag_values)


def main(argv: list[str]) -> None:
    no_arguments(argv)
    translate = load_translate(FLAGS.model, FLAGS.mode)
    if FLAGS.input:
        sentences = read_text_lines(FLAGS.input)
    else:
        sentences = [line.rstrip("\r\n") for line in sys.stdin]
    translations = translate_all(translate, sentences, FLAGS.batch_size)["text"]
    text = "".join(t + "\n" for t in translations)
    if FLAGS.output:
        write_text_atomic(FLAGS.output, text)
    else:
        sys.stdout.write(text)
