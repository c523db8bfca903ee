"""lipseq prepare --config=X: the raw corpus the config names -> its prepared directory."""

from absl import flags
from ml_collections import config_flags

from pipelines.cli.common import no_arguments
from pipelines.tasks import task_for

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    config_flags.DEFINE_config_file(
        "config",
        None,
        "Experiment config (config.data: input, output, settings).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "plot",
        None,
        "Also plot this prepared example (lip reading: its mouth-box trajectory).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "engine",
        "local",
        ["local", "beam"],
        "local: worker processes on this machine (config.data.workers); beam: a TFDS dataset "
        "built by Apache Beam (lip reading and audio-visual; needs lipseq[beam]).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "beam_pipeline_options",
        "",
        "With --engine=beam: Beam's options as key=value,key=value (e.g. "
        "direct_running_mode=multi_processing,direct_num_workers=4, or runner=DataflowRunner,...).",
        flag_values=flag_values,
    )
    flags.mark_flag_as_required("config", flag_values=flag_values)


def main(argv: list[str]) -> None:
    no_arguments(argv)
    task = task_for(FLAGS.config)
    if FLAGS.engine == "beam":
        manifest = task.prepare_with_beam(FLAGS.beam_pipeline_options)
    else:
        manifest = task.prepare()
    for line in task.describe_prepared(manifest):
        print(line)
    if FLAGS.plot:
        print(f"plot: {task.plot_example(FLAGS.plot)}")
