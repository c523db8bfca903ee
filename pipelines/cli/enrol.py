"""lipseq enrol --model=M --videos=DIR|MANIFEST --workdir=W: adapt a lip reader to a speaker.

The speaker's clips (GRID or LRS layout, or a manifest of videos and transcripts; a GRID id
spells its own sentence) are prepared with the export's settings, a fifth held back; the model
trains from the export's weights for at most --minutes, stopping early on the held-back clips,
and W/export is an export like any other (`lipseq transcribe --model=W/export ...`). Prints
the held-back clips' WER before and after.
"""

from absl import flags

from pipelines.cli.common import no_arguments
from pipelines.enrolment import EnrolmentPlan, enrol

FLAGS = flags.FLAGS
DEFAULTS = EnrolmentPlan()


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define = {"flag_values": flag_values}
    flags.DEFINE_string(
        "model", "grid_s1", "Lip-reading export to adapt, or a shipped name.", **define
    )
    flags.DEFINE_string("videos", None, "The speaker's clips: a directory or a manifest.", **define)
    flags.DEFINE_string("workdir", None, "Where the data, the run and W/export go.", **define)
    flags.DEFINE_float(
        "minutes", DEFAULTS.minutes, "Training budget (wall-clock minutes).", **define
    )
    flags.DEFINE_integer("max_steps", DEFAULTS.max_steps, "Training steps at most.", **define)
    flags.DEFINE_float(
        "held_back", DEFAULTS.held_back, "Share of the clips held back to stop early.", **define
    )
    flags.DEFINE_string(
        "mode", "", "Mode scored before and after [the export's default].", **define
    )
    flags.mark_flags_as_required(["videos", "workdir"], flag_values=flag_values)


def main(argv: list[str]) -> None:
    no_arguments(argv)
    plan = EnrolmentPlan(
        minutes=FLAGS.minutes, max_steps=FLAGS.max_steps, held_back=FLAGS.held_back, mode=FLAGS.mode
    )
    result = enrol(FLAGS.model, FLAGS.videos, FLAGS.workdir, plan)
    print(f"clips: {result['clips']}, skipped: {result['skipped_by_reason'] or 'none'}")
    print(f"trained {result['steps']} steps in {result['train_minutes']} minutes")
    if "held_back_wer" in result:
        wer = result["held_back_wer"]
        print(
            f"held-back WER ({wer['mode']}, {wer['clips']} clips): "
            f"{wer['before']:.2f} before, {wer['after']:.2f} after"
        )
    print(f"export: {result['export']}")
