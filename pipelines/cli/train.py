"""lipseq train --config=X --workdir=W: train, or resume the run in W."""

from absl import flags, logging
from ml_collections import config_flags

from pipelines.cli.common import no_arguments
from pipelines.training.distribute import STRATEGIES, make_strategy
from pipelines.training.loop import train

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    config_flags.DEFINE_config_file("config", None, "Experiment config.", flag_values=flag_values)
    flags.DEFINE_string(
        "workdir",
        None,
        "Checkpoints, logs and curves go here (resumes from it).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "strategy",
        "default",
        STRATEGIES,
        "tf.distribute strategy; multi_worker reads the cluster from TF_CONFIG.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "logical_cpus",
        0,
        "Split the CPU into this many logical devices (to try mirrored on CPU).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "init_from",
        None,
        "Start from the weights of this training workdir, export or release (same model config;"
        " --config.init_stream=video puts a lip-reading model into that stream).",
        flag_values=flag_values,
    )
    flags.mark_flags_as_required(["config", "workdir"], flag_values=flag_values)


def main(argv: list[str]) -> None:
    no_arguments(argv)
    strategy = make_strategy(FLAGS.strategy, FLAGS.logical_cpus)
    logging.info("strategy %s with %d replicas", FLAGS.strategy, strategy.num_replicas_in_sync)
    config = FLAGS.config
    if FLAGS.init_from:
        config.init_from = FLAGS.init_from
    train(config, FLAGS.workdir, strategy)
