"""lipseq demo [--paths=text,video,audio_visual]: every path end to end on generated data.

Exits 1 when a path does not show learning (BLEU below --min_bleu, WER above --max_wer).
"""

from pathlib import Path

from absl import flags

from configs import demo_video
from pipelines.cli.common import no_arguments
from pipelines.demo import PATHS, run_demo

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define = {"flag_values": flag_values}
    flags.DEFINE_string("workdir", "runs/demo", "Where the demo writes everything.", **define)
    flags.DEFINE_list("paths", list(PATHS), f"Demo paths to run ({', '.join(PATHS)}).", **define)
    flags.DEFINE_float("min_bleu", 90.0, "Text: fail when test BLEU ends below this.", **define)
    flags.DEFINE_float(
        "max_wer", 35.0, "Video, audio-visual: fail when the joint test WER ends above.", **define
    )
    flags.DEFINE_integer("train_steps", None, "Text: override the config's step count.", **define)
    flags.DEFINE_integer("video_train_steps", None, "Video: override the step count.", **define)
    flags.DEFINE_integer(
        "video_clips", None, f"Video: clips to render ({demo_video.DEMO_CLIPS}).", **define
    )
    flags.DEFINE_integer("av_train_steps", None, "Audio-visual: override the step count.", **define)
    flags.DEFINE_bool(
        "quick",
        False,
        "Video only, reduced for CI: fewer words per slot, small frames at half the frame "
        f"rate, {demo_video.QUICK_CLIPS} clips, about two minutes on 2 cores.",
        **define,
    )


def main(argv: list[str]) -> None:
    no_arguments(argv)
    paths = FLAGS.paths if FLAGS["paths"].present or not FLAGS.quick else ["video"]
    passed = run_demo(
        Path(FLAGS.workdir),
        paths,
        FLAGS.min_bleu,
        FLAGS.max_wer,
        FLAGS.train_steps,
        FLAGS.video_train_steps,
        FLAGS.video_clips,
        FLAGS.av_train_steps,
        FLAGS.quick,
    )
    if not passed:
        raise SystemExit(1)
