"""lipseq export --workdir=W [--export_dir=D] [--average_last=N | --ensemble_last=N]
[--ensemble_with=W2,W3]: a training run (or an ensemble of runs) -> a SavedModel."""

from pathlib import Path

from absl import flags

from pipelines.cli.common import no_arguments
from pipelines.serving.export import export_model

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_string(
        "workdir", None, "Training workdir to export from.", flag_values=flag_values
    )
    flags.DEFINE_string(
        "export_dir",
        None,
        "Output SavedModel directory [<workdir>/export].",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "checkpoint", "best", "best, latest, or a checkpoint path.", flag_values=flag_values
    )
    flags.DEFINE_integer(
        "serving_version",
        None,
        "Write <export_dir>/<version>/, TensorFlow Serving's layout.",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "language_model",
        None,
        "A language-model workdir or export to fuse into the beam searches (`<mode>_lm`).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "average_last",
        0,
        "Export the mean weights of the last N kept checkpoints (N > 1) instead of --checkpoint.",
        lower_bound=0,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "ensemble_last",
        0,
        "Export the last N kept checkpoints (N > 1) as an ensemble (translation).",
        lower_bound=0,
        flag_values=flag_values,
    )
    flags.DEFINE_list(
        "ensemble_with",
        [],
        "Other training workdirs (same vocabularies) whose best checkpoints join the ensemble.",
        flag_values=flag_values,
    )
    flags.mark_flag_as_required("workdir", flag_values=flag_values)


def main(argv: list[str]) -> None:
    no_arguments(argv)
    export_dir = FLAGS.export_dir or str(Path(FLAGS.workdir) / "export")
    print(
        export_model(
            FLAGS.workdir,
            export_dir,
            FLAGS.checkpoint,
            FLAGS.serving_version,
            FLAGS.language_model,
            FLAGS.average_last,
            FLAGS.ensemble_last,
            FLAGS.ensemble_with,
        )
    )
