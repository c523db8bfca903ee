"""Scores a model: BLEU and chrF (sacrebleu) for translation, WER and CER (jiwer) for lip reading.

    python -m pipelines.evaluate --saved_model=runs/multi30k/export \
        --source=../shared/data/multi30k/test_2016_flickr.en.gz \
        --reference=../shared/data/multi30k/test_2016_flickr.de.gz --output=report.json
    python -m pipelines.evaluate --workdir=runs/multi30k --split=test_2016_flickr

    python -m pipelines.evaluate --saved_model=runs/grid/export --prepared_dir=runs/grid/data \
        --split=test     # lip reading: every decoding signature, WER and CER for each

Writes a JSON report (summary + one entry per sentence or clip) and prints a summary.
"""

import gzip
import json
import os
import time
from pathlib import Path

import sacrebleu
import tensorflow as tf
from absl import app, flags

MODES = ("beam", "greedy")


def read_text_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 text file, plain or .gz, without line endings."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not valid UTF-8 ({error})") from error


def load_saved_model_translate(saved_model_dir: str | Path, mode: str):
    """A function strings -> outputs dict, backed by an exported SavedModel."""
    import tensorflow_text  # noqa: F401  registers the SentencePiece ops the export uses

    loaded = tf.saved_model.load(str(saved_model_dir))
    signature = loaded.signatures["serving_default" if mode == "beam" else "greedy"]
    return lambda strings: signature(source=strings)


def load_checkpoint_translate(workdir: str | Path, mode: str, checkpoint: str = "best"):
    """A function strings -> outputs dict, backed by a training checkpoint."""
    from pipelines import experiment

    config, manifest, model, _ = experiment.restore_model(workdir, checkpoint)
    translator = experiment.translator_for(
        model, config, experiment.prepared_dir_of(config), manifest
    )
    translate = translator.translate_beam if mode == "beam" else translator.translate_greedy
    return translate, config


def score_translations(
    sources: list[str], hypotheses: list[str], references: list[str], ids: list[str] | None = None
) -> dict:
    """Corpus BLEU/chrF plus per-sentence scores."""
    if not (len(sources) == len(hypotheses) == len(references)):
        raise ValueError(
            f"length mismatch: {len(sources)} sources, {len(hypotheses)} hypotheses, "
            f"{len(references)} references"
        )
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    sentence_bleu = sacrebleu.metrics.BLEU(effective_order=True)
    corpus_bleu = bleu.corpus_score(hypotheses, [references])
    corpus_chrf = chrf.corpus_score(hypotheses, [references])
    sentences = [
        {
            "id": ids[i] if ids else str(i),
            "source": sources[i],
            "reference": references[i],
            "hypothesis": hypotheses[i],
            "bleu": round(sentence_bleu.sentence_score(hypotheses[i], [references[i]]).score, 2),
            "chrf": round(chrf.sentence_score(hypotheses[i], [references[i]]).score, 2),
        }
        for i in range(len(sources))
    ]
    return {
        "summary": {
            "bleu": round(corpus_bleu.score, 2),
            "chrf": round(corpus_chrf.score, 2),
            "bleu_signature": str(bleu.get_signature()),
            "chrf_signature": str(chrf.get_signature()),
            "num_sentences": len(sources),
        },
        "sentences": sentences,
    }


def evaluate(translate_fn, sources, references, batch_size: int = 64) -> dict:
    """Translates `sources` and scores them against `references`."""
    from pipelines.translator import translate_all

    started = time.monotonic()
    hypotheses = translate_all(translate_fn, sources, batch_size)["text"]
    report = score_translations(sources, hypotheses, references)
    seconds = time.monotonic() - started
    report["summary"]["seconds"] = round(seconds, 2)
    report["summary"]["sentences_per_second"] = round(len(sources) / max(seconds, 1e-9), 2)
    return report


def read_prepared_clips(prepared_dir: str | Path, split: str, limit: int = 0) -> list[dict]:
    """(id, text, uint8 frames [T, H, W, C]) of every clip of a prepared lip-reading split."""
    from pipelines.inputs.video import decode_clip, load_video_manifest, video_split_files

    manifest = load_video_manifest(prepared_dir)
    clips = []
    for raw in tf.data.TFRecordDataset(video_split_files(prepared_dir, manifest, split)):
        clip = decode_clip(raw)
        clips.append(
            {
                "id": clip["id"].numpy().decode(),
                "text": clip["text"].numpy().decode(),
                "frames": clip["frames"].numpy(),
            }
        )
        if limit and len(clips) >= limit:
            break
    return clips


def evaluate_lipreading(
    saved_model_dir, clips: list[dict], signatures=None, batch_size: int = 16
) -> dict:
    """WER and CER (jiwer) of each decoding signature of a lip-reading SavedModel."""
    import jiwer

    from pipelines.transcriber import transcribe_batches

    loaded = tf.saved_model.load(str(saved_model_dir))
    names = signatures or sorted(n for n in loaded.signatures if n != "serving_default")
    references = [clip["text"] for clip in clips]
    report = {"summary": {"num_clips": len(clips), "modes": {}}, "clips": []}
    per_clip = {clip["id"]: {"id": clip["id"], "reference": clip["text"]} for clip in clips}
    for name in names:
        signature = loaded.signatures[name]
        started = time.monotonic()
        hypotheses = transcribe_batches(
            lambda frames, lengths, s=signature: s(frames=frames, lengths=lengths),
            [clip["frames"] for clip in clips],
            batch_size,
        )
        seconds = time.monotonic() - started
        report["summary"]["modes"][name] = {
            "wer": round(100 * jiwer.wer(references, hypotheses), 2),
            "cer": round(100 * jiwer.cer(references, hypotheses), 2),
            "clips_per_second": round(len(clips) / max(seconds, 1e-9), 2),
        }
        for clip, hypothesis in zip(clips, hypotheses, strict=True):
            per_clip[clip["id"]][name] = {
                "hypothesis": hypothesis,
                "wer": round(100 * jiwer.wer(clip["text"], hypothesis), 2),
            }
    report["clips"] = list(per_clip.values())
    return report


def write_report(report: dict, path: str | Path) -> None:
    """Writes the JSON report atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    os.replace(tmp, path)


def summary_line(summary: dict) -> str:
    """One human-readable line: BLEU, chrF, size, mode."""
    return (
        f"BLEU = {summary['bleu']:.2f}  chrF = {summary['chrf']:.2f}  "
        f"({summary['num_sentences']} sentences, {summary.get('mode', '?')} search, "
        f"{summary.get('sentences_per_second', 0):.1f} sentences/s)  {summary['bleu_signature']}"
    )


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this entry point's flags (only when run as a program)."""
    flags.DEFINE_string("saved_model", None, "Exported SavedModel directory.")
    flags.DEFINE_string("workdir", None, "Training workdir (evaluates a checkpoint).")
    flags.DEFINE_string("checkpoint", "best", "With --workdir: best, latest or a path.")
    flags.DEFINE_string("source", None, "Source sentences, one per line (.gz ok).")
    flags.DEFINE_string("reference", None, "Reference translations, line-aligned.")
    flags.DEFINE_string("prepared_dir", None, "Prepared dataset (with --split).")
    flags.DEFINE_string("split", "test", "Prepared split to score when no --source.")
    flags.DEFINE_enum("mode", "beam", MODES, "Search: beam (config beam size) or greedy.")
    flags.DEFINE_integer("batch_size", 64, "Sentences per batch.")
    flags.DEFINE_string("output", None, "JSON report path [<model dir>/eval_<split>.json].")


def _main_lipreading() -> None:
    if not (FLAGS.saved_model and FLAGS.prepared_dir):
        raise app.UsageError("lip reading: give --saved_model and --prepared_dir (with --split)")
    clips = read_prepared_clips(FLAGS.prepared_dir, FLAGS.split)
    report = evaluate_lipreading(FLAGS.saved_model, clips, batch_size=FLAGS.batch_size)
    report["summary"].update(model=FLAGS.saved_model, split=FLAGS.split)
    output = Path(FLAGS.output or Path(FLAGS.saved_model) / f"eval_{FLAGS.split}.json")
    write_report(report, output)
    for name, scores in report["summary"]["modes"].items():
        print(
            f"{name:24s} WER = {scores['wer']:6.2f}  CER = {scores['cer']:6.2f}  "
            f"({len(clips)} clips, {scores['clips_per_second']:.1f} clips/s)"
        )
    print(f"report: {output}")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.saved_model:
        from pipelines.export import read_export_info

        info_path = Path(FLAGS.saved_model) / "assets.extra" / "lipseq.json"
        if info_path.is_file() and read_export_info(FLAGS.saved_model)["task"] == "lipreading":
            _main_lipreading()
            return
    if bool(FLAGS.saved_model) == bool(FLAGS.workdir):
        raise app.UsageError("give exactly one of --saved_model or --workdir")
    prepared_dir = FLAGS.prepared_dir
    if FLAGS.saved_model:
        translate = load_saved_model_translate(FLAGS.saved_model, FLAGS.mode)
        model_dir = Path(FLAGS.saved_model)
    else:
        translate, config = load_checkpoint_translate(FLAGS.workdir, FLAGS.mode, FLAGS.checkpoint)
        prepared_dir = prepared_dir or config.data.prepared_dir
        model_dir = Path(FLAGS.workdir)
    if FLAGS.source or FLAGS.reference:
        if not (FLAGS.source and FLAGS.reference):
            raise app.UsageError("--source and --reference go together")
        source_path, reference_path = Path(FLAGS.source), Path(FLAGS.reference)
        name = source_path.name.split(".")[0]
    else:
        if not prepared_dir:
            raise app.UsageError("give --source/--reference, or --prepared_dir with --split")
        source_path = Path(prepared_dir) / f"{FLAGS.split}.source.txt"
        reference_path = Path(prepared_dir) / f"{FLAGS.split}.target.txt"
        name = FLAGS.split
    sources, references = read_text_lines(source_path), read_text_lines(reference_path)
    if len(sources) != len(references):
        raise app.UsageError(
            f"{source_path} has {len(sources)} lines but {reference_path} has {len(references)}"
        )
    report = evaluate(translate, sources, references, FLAGS.batch_size)
    report["summary"].update(
        mode=FLAGS.mode,
        model=str(model_dir),
        source=str(source_path),
        reference=str(reference_path),
    )
    output = Path(FLAGS.output or model_dir / f"eval_{name}_{FLAGS.mode}.json")
    write_report(report, output)
    print(summary_line(report["summary"]))
    print(f"report: {output}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
