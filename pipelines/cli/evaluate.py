"""lipseq evaluate --saved_model=D | --workdir=W: score an export with the task's metrics.

Translation: BLEU and chrF (sacrebleu) on --source/--reference files or a prepared split.
Lip reading: WER and CER (jiwer) of every decoding signature on a prepared split, or on raw
videos (--videos=DIR|MANIFEST, prepared with the export's own settings; GRID per-slot accuracy).
Audio-visual: WER and CER per modality (both, lips, sound), mode and SNR (--snr, --noise) on
a prepared split, with a PNG of WER against SNR.
Writes a JSON report (summary + one entry per sentence or clip) and prints the summary.
"""

from pathlib import Path

from absl import app, flags

from pipelines.cli.common import no_arguments
from pipelines.evaluation import evaluate_export
from pipelines.scoring import write_report

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define = {"flag_values": flag_values}
    flags.DEFINE_string("saved_model", None, "Export directory, or a shipped model name.", **define)
    flags.DEFINE_string("workdir", None, "Training workdir: evaluates a checkpoint.", **define)
    flags.DEFINE_string("checkpoint", "best", "With --workdir: best, latest or a path.", **define)
    flags.DEFINE_string(
        "inputs",
        None,
        "Translation: source sentences, a line each (.gz ok). Lip reading (--videos): a "
        "directory of raw videos or a manifest.",
        **define,
    )
    flags.DEFINE_string("references", None, "Translation: references, line-aligned.", **define)
    flags.DEFINE_alias("source", "inputs", flag_values=flag_values)
    flags.DEFINE_alias("videos", "inputs", flag_values=flag_values)
    flags.DEFINE_alias("reference", "references", flag_values=flag_values)
    flags.DEFINE_string(
        "prepared_dir", None, "Prepared dataset [the one the model was trained on].", **define
    )
    flags.DEFINE_string("split", "test", "Prepared split to score.", **define)
    flags.DEFINE_list(
        "modes",
        None,
        "Decoding modes (translation: beam, greedy; lip reading: signature names) [all / beam].",
        **define,
    )
    flags.DEFINE_alias("mode", "modes", flag_values=flag_values)
    flags.DEFINE_integer("batch_size", 32, "Examples per batch.", **define)
    flags.DEFINE_list(
        "snr",
        None,
        "Audio-visual: SNRs to score at, 'clean' or dB (e.g. clean,10,5,0,-5).",
        **define,
    )
    flags.DEFINE_enum(
        "noise", "babble", ["babble", "white"], "Audio-visual: the noise --snr adds.", **define
    )
    flags.DEFINE_string(
        "output", None, "JSON report path [<model dir>/eval_<split>.json].", **define
    )


def main(argv: list[str]) -> None:
    no_arguments(argv)
    if bool(FLAGS.saved_model) == bool(FLAGS.workdir):
        raise app.UsageError("give exactly one of --saved_model or --workdir")
    options = {
        "split": FLAGS.split,
        "inputs": FLAGS.inputs,
        "references": FLAGS.references,
        "modes": FLAGS.modes,
        "batch_size": FLAGS.batch_size,
    }
    if FLAGS.snr:
        options.update(snr=FLAGS.snr, noise=FLAGS.noise)
    report, lines, default_output = evaluate_export(
        saved_model=FLAGS.saved_model,
        workdir=FLAGS.workdir,
        checkpoint=FLAGS.checkpoint,
        prepared_dir=FLAGS.prepared_dir,
        **options,
    )
    output = Path(FLAGS.output or default_output)
    write_report(report, output)
    for line in lines:
        print(line)
    print(f"report: {output}")
