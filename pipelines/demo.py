"""`lipseq demo`: the text and the video paths end to end on data the project makes itself.

Text: toy language pair -> prepare (SentencePiece + shards) -> train -> export -> BLEU.
Video: synthetic talking faces with their sound -> prepare (face/mouth detection, crops, the
aligned audio) -> train -> export -> transcribe one raw clip -> WER on held-out clips, next to
a chance baseline.
Audio-visual: the same clips' frames and sound -> one model with a stream each, its video
stream started from the video path's model -> WER of lips, sound and both, clean and in
babble at falling SNR.
Exits 1 when a path does not show learning (BLEU below --min_bleu, WER above --max_wer).
"""

import collections
import time
from pathlib import Path

from configs import demo_toy, demo_video
from data_prep.corpora.grid import GRID_GRAMMAR
from data_prep.errors import ConfigError
from data_prep.synthetic import toy_language
from data_prep.synthetic.faces import write_synthetic_corpus
from pipelines.inference.lipreading import transcribe_video
from pipelines.plots import plot_alignment_over_frames
from pipelines.scoring import word_error_rate, write_report
from pipelines.serving.export import export_model
from pipelines.tasks import task_for
from pipelines.tasks.lipreading import evaluate_lipreading, read_prepared_clips
from pipelines.training.loop import train

PATHS = ("text", "video", "audio_visual")
VIDEO_MODES = ("ctc_greedy", "attention", "joint", "joint_grammar")
AV_MODES = ("ctc_greedy", "joint")
AV_SNRS = ("clean", "10", "0", "-5")


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
    task = task_for(config)

    def prepare():
        toy_language.write_corpus(config.data.input_dir, seed=config.seed)
        task.prepare()

    _timed(timings, "prepare", prepare)
    _timed(timings, "train", train, config, workdir / "train")
    export_dir = _timed(timings, "export", export_model, workdir / "train", workdir / "export")
    report = _timed(timings, "evaluate", task.evaluate, export_dir, split="test")
    report["summary"].update(stage_seconds=timings)
    write_report(report, workdir / "eval_test.json")
    return report


def chance_wer(train_texts: list[str], test_texts: list[str]) -> float:
    """WER of always answering the most frequent training word of each GRID slot."""
    slots = [collections.Counter() for _ in GRID_GRAMMAR]
    for text in train_texts:
        for counter, word in zip(slots, text.split(), strict=True):
            counter[word] += 1
    guess = " ".join(counter.most_common(1)[0][0] for counter in slots)
    return round(word_error_rate(test_texts, [guess] * len(test_texts)), 2)


def prepare_faces(
    config, workdir: Path, num_clips: int, timings: dict, quick: bool = False
) -> dict:
    """Renders the talking faces with their sound into workdir/video_raw and prepares them
    (crops and audio) into workdir/video_data; returns the manifest. Both video paths read
    these, so a demo running both renders and prepares once. quick: the reduced clips of
    `lipseq demo --quick` (fewer words, small frames, half the frame rate)."""
    raw, prepared = workdir / "video_raw", workdir / "video_data"
    with config.unlocked():
        config.data.input_dir, config.data.prepared_dir = str(raw), str(prepared)
        config.data.audio = True
    render = {"vocabulary": demo_video.DEMO_VOCABULARY}
    if quick:
        render = {
            "vocabulary": demo_video.QUICK_VOCABULARY,
            "size": demo_video.QUICK_FRAME_SIZE,
            "fps": demo_video.QUICK_FPS,
        }

    def prepare():
        write_synthetic_corpus(raw, num_clips, seed=config.seed, audio=True, **render)
        return task_for(config).prepare()

    return _timed(timings, "prepare", prepare)


def run_video_demo(
    workdir: Path,
    train_steps: int | None = None,
    num_clips: int | None = None,
    quick: bool = False,
) -> dict:
    """Runs every video stage; returns the WER report of the exported model on the test clips.

    The report's summary adds the chance baseline, one transcribed raw test video (with its
    attention map drawn to workdir/video_attention.png) and the seconds of each stage.
    quick: the reduced run (configs/demo_video.py: QUICK_*, variant "quick").
    """
    timings = {}
    config = demo_video.get_config("quick" if quick else "")
    if train_steps:
        config.num_train_steps = config.decay_steps = train_steps
    if num_clips is None:
        num_clips = demo_video.QUICK_CLIPS if quick else demo_video.DEMO_CLIPS
    manifest = prepare_faces(config, workdir, num_clips, timings, quick)
    raw, prepared = workdir / "video_raw", workdir / "video_data"
    _timed(timings, "train", train, config, workdir / "video_train")
    export_dir = _timed(
        timings, "export", export_model, workdir / "video_train", workdir / "video_export"
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
        quick=quick,
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


def run_audio_visual_demo(
    workdir: Path,
    train_steps: int | None = None,
    num_clips: int = demo_video.DEMO_CLIPS,
    video_trained: bool = False,
) -> dict:
    """Trains one model on the clips' frames and sound and scores lips, sound and both, clean
    and in babble noise; returns the evaluation report (WER/CER per modality, mode and SNR).

    Two stages, as WLAS trains: the video stream starts from the video path's model
    (workdir/video_train), then both streams train together. video_trained: the video path
    has already run in this workdir; otherwise this renders, prepares and trains it first.
    """
    timings = {}
    config = demo_video.get_config("audio_visual")
    if train_steps:
        config.num_train_steps = config.decay_steps = train_steps
    if not video_trained:
        video_config = demo_video.get_config()
        prepare_faces(video_config, workdir, num_clips, timings)
        _timed(timings, "train_video", train, video_config, workdir / "video_train")
    config.data.input_dir = str(workdir / "video_raw")
    config.data.prepared_dir = str(workdir / "video_data")
    config.init_from, config.init_stream = str(workdir / "video_train"), "video"
    task = task_for(config)
    _timed(timings, "train", train, config, workdir / "av_train")
    export_dir = _timed(
        timings, "export", export_model, workdir / "av_train", workdir / "av_export"
    )
    report = _timed(
        timings,
        "evaluate",
        task.evaluate,
        export_dir,
        split="test",
        modes=list(AV_MODES),
        snr=list(AV_SNRS),
        noise="babble",
    )
    report["summary"].update(stage_seconds=timings)
    write_report(report, workdir / "av_eval_test.json")
    return report


def print_text_report(report: dict, workdir: Path, min_bleu: float) -> bool:
    """Prints the text demo's results; False when BLEU ends below `min_bleu`."""
    summary = report["summary"]
    for example in report["sentences"][:3]:
        print(
            f"  source:     {example['source']}\n  reference:  {example['reference']}\n"
            f"  hypothesis: {example['hypothesis']}\n"
        )
    print(f"text stage seconds: {summary['stage_seconds']}")
    beam = summary["modes"]["beam"]
    print(
        f"toy test set: BLEU = {beam['bleu']:.2f}  chrF = {beam['chrf']:.2f}  "
        f"({beam['num_sentences']} sentences, beam search)  {beam['bleu_signature']}"
    )
    print(f"text outputs: {workdir}/ (export/, train/training_curves.png, eval_test.json)")
    if summary["bleu"] < min_bleu:
        print(f"FAILED: test BLEU {summary['bleu']:.2f} is below {min_bleu:.1f}")
        return False
    return True


def print_video_report(report: dict, workdir: Path, max_wer: float) -> bool:
    """Prints the video demo's results; False when the joint WER ends above `max_wer`."""
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
    if wer > max_wer:
        print(f"FAILED: joint test WER {wer:.2f} is above {max_wer:.1f}")
        return False
    return True


def print_audio_visual_report(report: dict, workdir: Path, max_wer: float) -> bool:
    """Prints WER by modality and SNR; False when both streams together, clean, end above
    `max_wer` (joint decoding)."""
    summary = report["summary"]
    print(f"audio-visual stage seconds: {summary['stage_seconds']}")
    print(f"synthetic test clips: {summary['num_clips']}; joint decoding WER by babble SNR (dB)")
    print(f"  {'':14s}" + "".join(f"{label:>8s}" for label in summary["snr"]))
    for modality, by_mode in summary["table"].items():
        cells = "".join(f"{by_mode['joint'][label]['wer']:8.2f}" for label in summary["snr"])
        print(f"  {modality:14s}{cells}")
    print(
        f"audio-visual outputs: {workdir}/ (av_export/, av_train/training_curves.png, "
        "av_eval_test.json, av_export/eval_test_snr.png)"
    )
    wer = summary["table"]["audio_visual"]["joint"]["clean"]["wer"]
    if wer > max_wer:
        print(f"FAILED: audio-visual joint test WER {wer:.2f} is above {max_wer:.1f}")
        return False
    return True


def run_demo(
    workdir: Path,
    paths=PATHS,
    min_bleu: float = 90.0,
    max_wer: float = 35.0,
    train_steps: int | None = None,
    video_train_steps: int | None = None,
    video_clips: int | None = None,
    av_train_steps: int | None = None,
    quick: bool = False,
) -> bool:
    """Runs the chosen demo paths and prints their results; True when every gate passed.

    quick: the reduced video run CI uses (the text and audio-visual paths have none).
    """
    unknown = set(paths) - set(PATHS)
    if unknown:
        raise ConfigError(f"unknown demo paths {sorted(unknown)}; known: {', '.join(PATHS)}")
    if quick and set(paths) != {"video"}:
        raise ConfigError("--quick is a reduced video path: run it with --paths=video")
    started = time.monotonic()
    passed = True
    if "text" in paths:
        passed &= print_text_report(run_text_demo(workdir, train_steps), workdir, min_bleu)
    if "video" in paths:
        report = run_video_demo(workdir, video_train_steps, video_clips, quick)
        passed &= print_video_report(report, workdir, max_wer)
    if "audio_visual" in paths:
        report = run_audio_visual_demo(
            workdir, av_train_steps, video_clips or demo_video.DEMO_CLIPS, "video" in paths
        )
        passed &= print_audio_visual_report(report, workdir, max_wer)
    print(f"demo finished in {time.monotonic() - started:.0f} s")
    return passed
