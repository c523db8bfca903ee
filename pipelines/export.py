"""Exports a trained model as a SavedModel that maps raw strings to translations.

    python -m pipelines.export --workdir=runs/multi30k --export_dir=runs/multi30k/export

Signatures (load with `tf.saved_model.load` after `import tensorflow_text`; no project code):
    serving_default(source: string [B]) -> text [B], scores [B], alignments [B, T, S], lengths [B]
        beam search with the config's beam_size and length_penalty
    greedy(source: string [B]) -> the same keys, greedy search
The directory is written under a temporary name and renamed into place, so a crash never
leaves a half-written export behind.
"""

import json
import os
import shutil
from pathlib import Path

import tensorflow as tf
from absl import app, flags, logging

from pipelines import experiment


def _replace_directory(tmp: Path, target: Path) -> None:
    backup = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, backup)
    os.replace(tmp, target)
    shutil.rmtree(backup, ignore_errors=True)


def _save(module, signatures: dict, info: dict, export_dir: Path) -> Path:
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = export_dir.with_name(f".{export_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tf.saved_model.save(module, str(tmp), signatures=signatures)
    extra = tmp / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / "lipseq.json").write_text(json.dumps(info, indent=2, default=str))
    _replace_directory(tmp, export_dir)
    return export_dir


def read_export_info(export_dir: str | Path) -> dict:
    """The assets.extra/lipseq.json written beside an exported model."""
    return json.loads((Path(export_dir) / "assets.extra" / "lipseq.json").read_text())


def export_lipreading(
    workdir: str | Path, export_dir: str | Path, checkpoint: str = "best"
) -> Path:
    """SavedModel: uint8 mouth frames [B, T, H, W, C] + lengths [B] -> text, scores, alignments.

    serving_default is joint CTC/attention decoding when the model has a CTC head (attention
    beam search otherwise); every mode is also its own signature, and with a configured
    grammar each mode has a `<mode>_grammar` twin.
    """
    from pipelines.transcriber import Transcriber

    workdir, export_dir = Path(workdir), Path(export_dir)
    config, manifest, model, checkpoint_path = experiment.restore_model(workdir, checkpoint)
    module = tf.Module()
    module.plain = Transcriber(model, config, manifest["normalisation"])
    signatures = {m: f.get_concrete_function() for m, f in module.plain.functions.items()}
    if config.decode.get("grammar"):
        module.grammar = Transcriber(model, config, manifest["normalisation"], grammar=True)
        for mode, function in module.grammar.functions.items():
            signatures[f"{mode}_grammar"] = function.get_concrete_function()
    default = "joint" if module.plain.has_ctc else "attention"
    signatures["serving_default"] = signatures[default]
    info = {
        "task": "lipreading",
        "checkpoint": checkpoint_path,
        "config": config.to_dict(),
        "prep": manifest["settings"],
        "frame_shape": manifest["frame_shape"],
        "normalisation": manifest["normalisation"],
        "signatures": sorted(signatures),
        "serving_default": default,
    }
    _save(module, signatures, info, export_dir)
    logging.info("exported %s (from %s)", export_dir, checkpoint_path)
    return export_dir


def export_model(workdir: str | Path, export_dir: str | Path, checkpoint: str = "best") -> Path:
    """Exports a training run of either task."""
    config = experiment.load_config(Path(workdir))
    if config.task == "lipreading":
        return export_lipreading(workdir, export_dir, checkpoint)
    return export_translation(workdir, export_dir, checkpoint)


def export_translation(
    workdir: str | Path, export_dir: str | Path, checkpoint: str = "best"
) -> Path:
    """Writes the SavedModel for the `checkpoint` (best, latest or a path) of a training run."""
    workdir, export_dir = Path(workdir), Path(export_dir)
    config, manifest, model, checkpoint_path = experiment.restore_model(workdir, checkpoint)
    prepared_dir = experiment.prepared_dir_of(config)
    translator = experiment.translator_for(model, config, prepared_dir, manifest)
    signatures = {
        "serving_default": translator.translate_beam.get_concrete_function(),
        "greedy": translator.translate_greedy.get_concrete_function(),
    }
    info = {
        "task": "translation",
        "checkpoint": checkpoint_path,
        "config": config.to_dict(),
        "vocab": manifest["vocab"],
        "signatures": {
            "serving_default": f"beam search, beam_size={config.decode.beam_size}, "
            f"length_penalty={config.decode.length_penalty}",
            "greedy": "greedy search",
        },
        "requires": ["tensorflow", "tensorflow_text (import it before loading)"],
    }
    _save(translator, signatures, info, export_dir)
    logging.info("exported %s (from %s)", export_dir, checkpoint_path)
    return export_dir


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this entry point's flags (only when run as a program)."""
    flags.DEFINE_string("workdir", None, "Training workdir to export from.")
    flags.DEFINE_string("export_dir", None, "Output SavedModel directory [<workdir>/export].")
    flags.DEFINE_string("checkpoint", "best", "best, latest, or a checkpoint path.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    export_dir = FLAGS.export_dir or str(Path(FLAGS.workdir) / "export")
    print(export_model(FLAGS.workdir, export_dir, FLAGS.checkpoint))


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["workdir"])
    app.run(main)
