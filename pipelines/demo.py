"""`make demo`: the text and the video paths end to end on data the project makes itself.

Text: toy language pair -> prepare (SentencePiece + shards) -> train -> export -> BLEU.
Video: synthetic talking faces -> prepare (face/mouth detection, crops) -> train -> export
-> transcribe one raw clip -> WER on held-out clips, next to a chance baseline.
Exits 1 when a path does not show learning (BLEU below --min_bleu, WER above --max_wer).
"""

import collections
import time
from pathlib import Path

import jiwer
from absl import app, flags, logging

from configs import demo_toy, demo_video
from data_prep.synthetic import toy_language
from data_prep.corpora.grid import GRID_GRAMMAR
from data_prep.lipreading import LipreadingSettings
from data_prep.synthetic.faces import write_synthetic_corpus
from pipelines.evaluate import (
    evaluate,
    evaluate_lipreading,
    load_saved_model_translate,
    read_prepared_clips,
    summary_line,
    write_report,
)
from pipelines.export import export_lipreading, export_translation
from pipelines.prepare import prepare_lipreading_dataset, prepare_translation
from pipelines.train import train
from pipelines.transcribe import plot_alignment_over_frames, transcribe_video

FLAGS = flags.FLAGS
PATHS = ("text", "video")
VIDEO_MODES = ("ctc_greedy", "attention", "joint", "joint_grammar")


def define_flags() -> None:
    """Defines this entry point's flags (only when run as a program)."""
    flags.DEFINE_string("workdir", "runs/demo", "Where the demo writes everything.")
    flags.DEFINE_list("paths", list(PATHS), f"Which demo paths to run ({', '.join(PATHS)}).")
    flags.DEFINE_float("min_bleu", 90.0, "Text: fail when test BLEU ends below this.")
    flags.DEFINE_float("max_wer", 35.0, "Video: fail when the joint test WER ends above this.")
    flags.DEFINE_integer("train_steps", None, "Text: override the config's step count.")
    flags.DEFINE_integer("video_train_steps", None, "Video: override the config's step count.")
    flags.DEFINE_integer("video_clips", demo_video.DEMO_CLIPS, "Video: clips to render.")


def _timed(timings: dict, stage: str, function, *args, **kwargs):
    started = time.monotonic()
    result = function(*args, **kwargs)
    timings[stage] = round(time.monotonic() - started, 1)
    return result


def run_text_demo(workdir: Path, train_steps: int | None = None) -> dict:
    """Runs every text stage; returns the evaluation report of the exported model on test."""
    timings = {}
    config = demo_toy.get_config()
    config.data.input_dir = str(workdir / "raw")
    config.data.prepared_dir = str(workdir / "data")
    if train_steps:
        config.num_train_steps = train_steps

    def prepare():
        toy_language.write_corpus(config.data.input_dir, seed=config.seed)
        prepare_translation(config)

    _timed(timings, "prepare", prepare)
    _timed(timings, "train", train, config, workdir / "train")
    export_dir = _timed(
        timings, "export", export_translation, workdir / "train", workdir / "export"
    )
    data = Path(config.data.prepared_dir)
    sources = (data / "test.source.txt").read_text(encoding="utf-8").splitlines()
    references = (data / "test.target.txt").read_text(encoding="utf-8").splitlines()
    translate = load_saved_model_translate(export_dir, "beam")
    report = _timed(timings, "evaluate", evaluate, translate, sources, references)
    report["summary"].update(mode="beam", model=str(export_dir), stage_seconds=timings)
    write_report(report, workdir / "eval_test.json")
    return report


def chance_wer(train_texts: list[str], test_texts: list[str]) -> float:
    """WER of always answering the most frequent training word of each GRID slot."""
    slots = [collections.Counter() for _ in GRID_GRAMMAR]
    for text in train_texts:
        for counter, word in zip(slots, text.split(), strict=True):
            counter[word] += 1
    guess = " ".join(counter.most_common(1)[0][0] for counter in slots)
    return round(100 * jiwer.wer(test_texts, [guess] * len(test_texts)), 2)


def run_video_demo(
    workdir: Path, train_steps: int | None = None, num_clips: int = demo_video.DEMO_CLIPS
) -> dict:
    """Runs every video stage; returns the WER report of the exported model on the test clips.

    The report's summary adds the chance baseline, one transcribed raw test video (with its
    attention map drawn to workdir/video_attention.png) and the seconds of each stage.
    """
    timings = {}
    config = demo_video.get_config()
    raw, prepared = workdir / "video_raw", workdir / "video_data"
    config.data.input_dir, config.data.prepared_dir = str(raw), str(prepared)
    if train_steps:
        config.num_train_steps = config.decay_steps = train_steps

    def prepare():
        write_synthetic_corpus(
            raw, num_clips, seed=config.seed, vocabulary=demo_video.DEMO_VOCABULARY
        )
        return prepare_lipreading_dataset(
            "grid", raw, prepared, LipreadingSettings(preset="small", clips_per_shard=32), workers=2
        )

    manifest = _timed(timings, "prepare", prepare)
    _timed(timings, "train", train, config, workdir / "video_train")
    export_dir = _timed(
        timings, "export", export_lipreading, workdir / "video_train", workdir / "video_export"
    )
    test_clips = read_prepared_clips(prepared, "test")
    report = _timed(
        timings, "evaluate", evaluate_lipreading, export_dir, test_clips, list(VIDEO_MODES)
    )
    train_texts = [clip["text"] for clip in manifest["splits"]["train"]["clips"]]
    first = sorted(c["id"] for c in test_clips)[0]
    video = raw / "s1" / "video" / f"{first}.mp4"
    transcript = _timed(timings, "transcribe_one", transcribe_video, video, export_dir)
    png = plot_alignment_over_frames(
        transcript["alignments"],
        transcript["crops"],
        transcript["text"],
        workdir / "video_attention.png",
    )
    summary = report["summary"]
    summary.update(
        model=str(export_dir),
        clips_by_split={k: v["num_examples"] for k, v in manifest["splits"].items()},
        chance_wer=chance_wer(train_texts, [clip["text"] for clip in test_clips]),
        transcribed={
            "id": first,
            "reference": next(c["text"] for c in test_clips if c["id"] == first),
            "hypothesis": transcript["text"],
            "seconds": transcript["seconds"],
            "attention_png": str(png),
        },
        stage_seconds=timings,
    )
    write_report(report, workdir / "video_eval_test.json")
    return report


def _print_text(report: dict, workdir: Path) -> bool:
    summary = report["summary"]
    for example in report["sentences"][:3]:
        print(
            f"  source:     {example['source']}\n  reference:  {example['reference']}\n"
            f"  hypothesis: {example['hypothesis']}\n"
        )
    print(f"text stage seconds: {summary['stage_seconds']}")
    print(f"toy test set: {summary_line(summary)}")
    print(f"text outputs: {workdir}/ (export/, train/training_curves.png, eval_test.json)")
    if summary["bleu"] < FLAGS.min_bleu:
        logging.error("test BLEU %.2f is below --min_bleu=%.1f", summary["bleu"], FLAGS.min_bleu)
        return False
    return True


def _print_video(report: dict, workdir: Path) -> bool:
    summary = report["summary"]
    one = summary["transcribed"]
    print(f"  video:      {one['id']} (raw synthetic clip, transcribed from the file)")
    print(f"  reference:  {one['reference']}\n  hypothesis: {one['hypothesis']}\n")
    print(f"video stage seconds: {summary['stage_seconds']}")
    print(f"synthetic test clips: {summary['num_clips']}; chance WER {summary['chance_wer']:.2f}")
    for mode, scores in summary["modes"].items():
        print(f"  {mode:14s} WER {scores['wer']:6.2f}  CER {scores['cer']:6.2f}")
    print(
        f"video outputs: {workdir}/ (video_export/, video_train/training_curves.png, "
        "video_eval_test.json, video_attention.png, video_data/contact_sheet.png)"
    )
    wer = summary["modes"]["joint"]["wer"]
    if wer > FLAGS.max_wer:
        logging.error("joint test WER %.2f is above --max_wer=%.1f", wer, FLAGS.max_wer)
        return False
    return True


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    unknown = set(FLAGS.paths) - set(PATHS)
    if unknown:
        raise app.UsageError(f"unknown --paths {sorted(unknown)}; known: {', '.join(PATHS)}")
    workdir = Path(FLAGS.workdir)
    started = time.monotonic()
    passed = True
    if "text" in FLAGS.paths:
        passed &= _print_text(run_text_demo(workdir, FLAGS.train_steps), workdir)
    if "video" in FLAGS.paths:
        report = run_video_demo(workdir, FLAGS.video_train_steps, FLAGS.video_clips)
        passed &= _print_video(report, workdir)
    print(f"demo finished in {time.monotonic() - started:.0f} s")
    if not passed:
        raise SystemExit(1)


if __name__ == "__main__":
    define_flags()
    app.run(main)
