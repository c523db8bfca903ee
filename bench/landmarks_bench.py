"""Mouth crops from face landmarks against the Haar path, on faces of several speakers.

    python -m bench.landmarks_bench --output_dir=bench/results

For each detector (haar: the cascade plus the lip finder; landmarks: the face mesh) on the
shared clips of GRID s1 (the first 30 by id), the three other GRID speakers (s5 close-ups,
s26, s31: 10 clips each) and the LRS-style face tracks (10), writes landmark_prep.json:
  * clips prepared and skipped by reason, per corpus;
  * crop stability: the median, over frames, of the mouth centre's second difference (the
    frame-to-frame jitter that head motion does not explain), in mouth widths;
  * speed: decoding alone (read_video) and each detector's whole preparation, timed clip by
    clip side by side in `--rounds` interleaved passes; the figure is decode seconds over
    preparation seconds (1.0 would be preparation as fast as decoding), median of the
    rounds with their spread.
One process, OpenCV on one thread, the models on one thread each.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from absl import app, flags

from bench.common import spread, write_results
from data_prep.lipreading import ClipSkipped, LipreadingSettings, prepare_video
from data_prep.paths import shared_data_dir
from data_prep.video import read_video

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "bench/results", "Where landmark_prep.json goes.")
flags.DEFINE_integer("rounds", 3, "Interleaved timing passes over every clip.")

DETECTORS = {"haar": 10, "landmarks": 3}  # name -> detect_every (the mesh tracks cheaply)


def corpora(root: Path) -> dict[str, list[Path]]:
    more = root / "grid_more_speakers"
    return {
        "grid_s1": sorted((root / "grid" / "s1" / "video").glob("*.mp4"))[:30],
        **{s: sorted((more / s / "video").glob("*.mp4")) for s in ("s5", "s26", "s31")},
        "lrs": sorted((root / "lrs" / "main" / "demo").glob("*.mp4")),
    }


def jitter(boxes: np.ndarray) -> float:
    """Median |second difference| of the mouth centre, in mouth widths."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    width = float(np.median(boxes[:, 2] - boxes[:, 0]))
    if len(centre) < 3 or width <= 0:
        return float("nan")
    return float(np.median(np.hypot(*np.diff(centre, n=2, axis=0).T)) / width)


def settings_for(detector: str) -> LipreadingSettings:
    return LipreadingSettings(preset="gray80", detector=detector, detect_every=DETECTORS[detector])


def quality(videos: list[Path], detector: str) -> dict:
    """Clips prepared, skip reasons and crop stability of one detector on one corpus."""
    settings, reasons, jitters = settings_for(detector), {}, []
    for video in videos:
        try:
            jitters.append(jitter(prepare_video(video, settings).track.mouth_boxes))
        except ClipSkipped as skipped:
            reasons[skipped.reason] = reasons.get(skipped.reason, 0) + 1
    return {
        "clips": len(videos),
        "prepared": len(jitters),
        "skipped_by_reason": reasons,
        "mouth_jitter_widths": round(float(np.nanmedian(jitters)), 4) if jitters else None,
    }


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def prepare_or_refuse(video: Path, detector: str) -> None:
    """One clip's preparation; a refused clip's time counts too (it was spent)."""
    try:
        prepare_video(video, settings_for(detector))
    except ClipSkipped:
        pass


def speed(videos: list[Path], rounds: int) -> dict:
    """Decode and each detector's preparation, clip by clip side by side, per round."""
    per_round = []
    for _ in range(rounds):
        seconds = {"decode": 0.0, **dict.fromkeys(DETECTORS, 0.0)}
        for video in videos:
            seconds["decode"] += timed(lambda v=video: read_video(v, 25.0))
            for detector in DETECTORS:
                seconds[detector] += timed(lambda v=video, d=detector: prepare_or_refuse(v, d))
        per_round.append(seconds)
    return {
        "clips": len(videos),
        "rounds": per_round,
        **{
            f"{d}_prepare_over_decode": spread([r["decode"] / r[d] for r in per_round], 3)
            for d in DETECTORS
        },
    }


def main(argv):
    del argv
    cv2.setNumThreads(1)
    root = shared_data_dir()
    if not root.is_dir():
        raise SystemExit(f"landmarks bench: the shared corpora are not at {root}")
    sets = corpora(root)
    results = {
        "detectors": {d: settings_for(d).to_dict() for d in DETECTORS},
        "quality": {name: {d: quality(v, d) for d in DETECTORS} for name, v in sets.items()},
        # Every corpus but GRID s1's 30 (the other speakers and the face tracks) for speed.
        "speed": speed(
            [v for name, vs in sets.items() if name != "grid_s1" for v in vs], FLAGS.rounds
        ),
    }
    path = write_results("landmark_prep", results, FLAGS.output_dir)
    for name, row in results["quality"].items():
        print(name, {d: (q["prepared"], q["mouth_jitter_widths"]) for d, q in row.items()})
    print({k: v for k, v in results["speed"].items() if k != "rounds"}, "->", path)


if __name__ == "__main__":
    app.run(main)
