"""lipseq transcribe --video=F --model=D: lip-read a raw face video with a lip-reading export.

Prints the text and the seconds of each stage. The video is prepared exactly as the training
data was: the export's stored config rebuilds the face detector, tracker and crop.
"""

from absl import flags

from pipelines.cli.common import no_arguments
from pipelines.plots import plot_alignment_over_frames
from pipelines.serving.transcriber import MODES, transcribe_video

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define = {"flag_values": flag_values}
    flags.DEFINE_string("video", None, "Raw face video (any container FFmpeg reads).", **define)
    flags.DEFINE_string(
        "model",
        None,
        "Lip-reading export directory, or a shipped model name.",
        **define,
    )
    flags.DEFINE_enum(
        "mode", None, MODES, "Decoding mode [the export's serving_default].", **define
    )
    flags.DEFINE_bool("grammar", False, "Constrain the output to the model's grammar.", **define)
    flags.DEFINE_string(
        "alignment_png", None, "Draw the attention map over the frames here.", **define
    )
    flags.mark_flags_as_required(["video", "model"], flag_values=flag_values)


def main(argv: list[str]) -> None:
    no_arguments(argv)
    result = transcribe_video(FLAGS.video, FLAGS.model, FLAGS.mode, FLAGS.grammar)
    print(result["text"])
    print(f"score {result['score']:.3f}; seconds {result['seconds']}")
    if FLAGS.alignment_png:
        if result["alignments"].size == 0:
            print("no attention alignments in this mode (CTC); no picture drawn")
        else:
            path = plot_alignment_over_frames(
                result["alignments"], result["crops"], result["text"], FLAGS.alignment_png
            )
            print(f"alignment: {path}")
