"""The enrolment curve: held-back WER of each shared GRID speaker after 0, 3, 5 and 7 clips.

    python -m bench.enrolment_bench --output_dir=bench/results

For each speaker of ../shared/data/grid_more_speakers in GRID's framing (s26, s31; 10 clips
each) the last `--held_back` clips by id are held back and never trained on; the enrolment
clips are the first k of the others, so the sets are nested as k grows. k=0 is the shipped
export read zero-shot; for each k>0 `enrol` adapts the export on a folder holding only those
k clips, with one plan for every k (nothing held back inside enrol: the bench's own held-back
clips score it). The base and each enrolled export read the held-back clips, prepared once
with the export's settings, in the export's default mode and in joint. Writes
enrolment.json: WER and words scored per mode, and per enrolment its CPU seconds (this
process and its children), wall seconds and steps. One enrolment per point: training is
what is measured and the host's 2 cores allow no repeats within the time given.

The s5 close-ups are prepared too, to count the export's refusals by reason: the Haar
preparation finds no face in them, so they have no curve.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import tempfile
import time
from pathlib import Path

from absl import app, flags

from bench.common import say, write_results
from data_prep.lipreading import evaluation_clips, prepare_lipreading
from data_prep.paths import shared_data_dir
from pipelines.artifacts.exports import resolve_export
from pipelines.enrolment import EnrolmentPlan, enrol
from pipelines.inference.lipreading import LipReadingExport
from pipelines.tasks.lipreading import evaluate_lipreading, read_prepared_clips

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "bench/results", "Where enrolment.json goes.")
flags.DEFINE_string("model", "grid_s1", "The export enrolled from.")
flags.DEFINE_list("speakers", ["s26", "s31"], "Speakers under grid_more_speakers with a curve.")
flags.DEFINE_list("unprepared", ["s5"], "Speakers only counted: refusals by reason.")
flags.DEFINE_list("clips", ["3", "5", "7"], "Enrolment clip counts (0 is always scored).")
flags.DEFINE_integer("held_back", 3, "Clips per speaker held back for scoring.")
flags.DEFINE_integer("max_steps", 120, "Training steps of every enrolment.")
flags.DEFINE_float("minutes", 3.0, "Training budget of every enrolment (wall minutes).")

JOINT = "joint"


def split_speaker(ids: list[str], held_back: int) -> tuple[list[str], list[str]]:
    """(held-back ids, enrolment pool): the last `held_back` ids in sorted order are held
    back; the pool keeps the rest in order, so its first k are the k enrolment clips."""
    ordered = sorted(ids)
    if not 0 < held_back < len(ordered):
        raise ValueError(f"cannot hold back {held_back} of {len(ordered)} clips")
    return ordered[-held_back:], ordered[:-held_back]


def enrolment_sets(pool: list[str], counts: list[int]) -> dict[int, list[str]]:
    """k -> the first k clips of the pool: nested as k grows, none held back."""
    if any(k < 1 or k > len(pool) for k in counts):
        raise ValueError(f"enrolment counts {counts} outside 1..{len(pool)}")
    return {k: pool[:k] for k in sorted(counts)}


def link_clips(specs, folder: Path) -> Path:
    """A GRID-layout speaker folder of symlinks to the clips' videos and alignments."""
    for sub in ("video", "align"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for spec in specs:
        video = Path(spec.video_path)
        (folder / "video" / video.name).symlink_to(video)
        align = video.parent.parent / "align" / f"{video.stem}.align"
        if align.exists():
            (folder / "align" / align.name).symlink_to(align)
    return folder


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def score(export: Path, clips: list[dict], signatures: dict[str, str]) -> dict:
    """mode -> WER on the clips; the signatures are named by their modes."""
    report = evaluate_lipreading(export, clips, list(signatures.values()), batch_size=8)
    modes = report["summary"]["modes"]
    return {mode: modes[name]["wer"] for mode, name in signatures.items()}


def prepare_held_back(specs, folder: Path, base: LipReadingExport) -> tuple[list[dict], dict]:
    settings = dataclasses.replace(base.settings, strict=False)
    manifest = prepare_lipreading(specs, folder, settings, workers=1, split_of=lambda _: "test")
    clips = read_prepared_clips(folder, "test") if "test" in manifest["splits"] else []
    return clips, manifest["skipped_by_reason"]


def speaker_curve(speaker: Path, base_dir: Path, plan: EnrolmentPlan, scratch: Path) -> dict:
    base = LipReadingExport(base_dir)
    signatures = {base.default.mode_name: base.entry().name, JOINT: base.entry(JOINT).name}
    specs = {spec.id: spec for spec in evaluation_clips(speaker, "grid")}
    held_ids, pool = split_speaker(list(specs), FLAGS.held_back)
    sets = enrolment_sets(pool, [int(k) for k in FLAGS.clips])
    held, skipped = prepare_held_back([specs[i] for i in held_ids], scratch / "held", base)
    if not held:
        return {"measurable": False, "reason": f"no held-back clip prepared: {skipped}"}
    base_wer = score(base_dir, held, signatures)
    points = [{"clips": 0, "enrolment_ids": [], "wer": base_wer}]
    say(f"{speaker.name}: k=0 {base_wer}")
    for k, ids in sets.items():
        # Named after the speaker: the GRID layout reads a folder s<N> as one speaker's.
        videos = link_clips([specs[i] for i in ids], scratch / f"k{k}" / speaker.name)
        cpu, wall = cpu_seconds(), time.perf_counter()
        result = enrol(base_dir, videos, scratch / f"k{k}" / "run", plan)
        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
        wer = score(Path(result["export"]), held, signatures)
        points.append(
            {
                "clips": k,
                "enrolment_ids": ids,
                "clips_trained": result["clips"],
                "skipped_by_reason": result["skipped_by_reason"],
                "steps": result["steps"],
                "train_minutes": result["train_minutes"],
                "enrol_cpu_seconds": round(cpu, 1),
                "enrol_wall_seconds": round(wall, 1),
                "wer": wer,
            }
        )
        say(f"{speaker.name}: k={k} {wer} ({result['steps']} steps, {cpu / 60:.1f} CPU min)")
    return {
        "measurable": True,
        "held_back_ids": held_ids,
        "held_back_clips_scored": len(held),
        "held_back_skipped_by_reason": skipped,
        "words_scored": sum(len(clip["text"].split()) for clip in held),
        "modes": list(signatures),
        "points": points,
    }


def refusals(speaker: Path, base_dir: Path, scratch: Path) -> dict:
    """Clips prepared and refused by reason with the export's own settings."""
    base = LipReadingExport(base_dir)
    specs = evaluation_clips(speaker, "grid")
    settings = dataclasses.replace(base.settings, strict=False)
    manifest = prepare_lipreading(specs, scratch, settings, workers=1, split_of=lambda _: "test")
    prepared = sum(e["num_examples"] for e in manifest["splits"].values())
    return {
        "measurable": prepared > FLAGS.held_back,
        "clips": len(specs),
        "prepared": prepared,
        "skipped_by_reason": manifest["skipped_by_reason"],
        "reason": f"the export's {settings.detector} preparation refuses its clips",
    }


def main(argv) -> None:
    del argv
    root = shared_data_dir() / "grid_more_speakers"
    base_dir = resolve_export(FLAGS.model)
    plan = EnrolmentPlan(minutes=FLAGS.minutes, max_steps=FLAGS.max_steps, held_back=0.0)
    speakers = {}
    with tempfile.TemporaryDirectory(prefix="lipseq-enrolment-bench-") as scratch:
        for name in FLAGS.unprepared:
            speakers[name] = refusals(root / name, base_dir, Path(scratch) / name)
            say(f"{name}: {speakers[name]['skipped_by_reason']}")
        for name in FLAGS.speakers:
            speakers[name] = speaker_curve(root / name, base_dir, plan, Path(scratch) / name)
    results = {
        "model": FLAGS.model,
        "plan": dataclasses.asdict(plan),
        "held_back_per_speaker": FLAGS.held_back,
        "cpu_seconds_counts": "user+system of the bench process and its children during enrol "
        "(preparing the k clips, training, exporting)",
        "tf_threads": os.environ.get("TF_NUM_INTRAOP_THREADS", "default"),
        "speakers": speakers,
    }
    say(f"wrote {write_results('enrolment', results, FLAGS.output_dir)}")


if __name__ == "__main__":
    app.run(main)
