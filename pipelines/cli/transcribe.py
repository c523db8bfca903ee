"""lipseq transcribe --model=D --video=F | --inputs=...: lip-read raw face videos.

One video: prints the text and the seconds of each stage. A long video (over 20 s, or
frames above full HD) is streamed and read in overlapping 3-s windows, with face-lost
stretches reported as gaps. Many (--inputs: files, globs,
directories, manifests): loads the model once, prepares in worker processes while the model
runs, shows progress and writes JSON Lines (text, score, word times, ROI confidence, or the
skip reason) and, with --subtitles, an SRT or WebVTT file per video. Videos are prepared
exactly as the training data was: the export's stored config rebuilds face detector, tracker
and crop.
"""

from absl import app, flags

from pipelines.cli.common import no_arguments
from pipelines.inference.lipreading import transcribe_video
from pipelines.plots import plot_alignment_over_frames
from pipelines.serving.batch import transcribe_many
from pipelines.signatures.transcriber import MODES

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
    flags.DEFINE_enum(
        "modality",
        None,
        ["audio_visual", "video", "audio"],
        "Audio-visual exports: read both streams, the lips only, or the sound only "
        "[audio_visual; lip-reading exports: video].",
        **define,
    )
    flags.DEFINE_string(
        "alignment_png", None, "Draw the attention map over the frames here.", **define
    )
    flags.DEFINE_list(
        "inputs",
        None,
        "Many videos: files, globs, directories or manifests (.txt, .csv/.jsonl 'video').",
        **define,
    )
    flags.DEFINE_string(
        "output", "transcripts.jsonl", "With --inputs: the JSON Lines file.", **define
    )
    flags.DEFINE_enum(
        "subtitles", None, ["srt", "vtt"], "With --inputs: a subtitle file per video.", **define
    )
    flags.DEFINE_integer("workers", 2, "With --inputs: preparation processes.", **define)
    flags.mark_flags_as_required(["model"], flag_values=flag_values)


def main(argv: list[str]) -> None:
    no_arguments(argv)
    if bool(FLAGS.video) == bool(FLAGS.inputs):
        raise app.UsageError("give exactly one of --video or --inputs")
    if FLAGS.inputs:

        summary = transcribe_many(
            FLAGS.inputs,
            FLAGS.model,
            FLAGS.output,
            mode=FLAGS.mode,
            grammar=FLAGS.grammar,
            workers=FLAGS.workers,
            subtitle_format=FLAGS.subtitles,
        )
        print(summary)
        return
    result = transcribe_video(FLAGS.video, FLAGS.model, FLAGS.mode, FLAGS.grammar, FLAGS.modality)
    print(result["text"])
    if "pieces" in result:  # a long video, read window by window
        gaps = ", ".join(f"{g['start']:.1f}-{g['end']:.1f} s" for g in result["gaps"]) or "none"
        print(f"{len(result['pieces'])} pieces; no face: {gaps}; seconds {result['seconds']}")
        return
    print(f"score {result['score']:.3f}; seconds {result['seconds']}")
    if FLAGS.alignment_png:
        if result["alignments"].size == 0:
            print("no attention alignments in this mode (CTC); no picture drawn")
        else:
            path = plot_alignment_over_frames(
                result["alignments"], result["crops"], result["text"], FLAGS.alignment_png
            )
            print(f"alignment: {path}")
