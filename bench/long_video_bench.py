"""Memory and speed of transcribing long videos: streamed windows against decoding whole.

    python -m bench.long_video_bench --output_dir=bench/results [--model=grid_s1]

Builds 1- and 10-minute face videos by joining GRID s1 clips (generated talking faces when
../shared/data is absent), then, each in a fresh process so peak memory is its own:
  - `streamed`: pipelines/serving/long_video.py reads it window by window (CTC greedy);
  - `whole`: data_prep.video.read_video decodes it into one array, as short clips are read.
Peak RSS (MiB) and seconds per video minute are reported; the streamed path's memory should
not grow with length. Every run is repeated 3 times (median, min, max).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from absl import app, flags

from bench.common import spread, write_results

FLAGS = flags.FLAGS

STREAMED = """
import json, time
from bench.common import peak_rss_mb
from pipelines.inference.long_video import transcribe_long
from pipelines.inference.lipreading import VideoTranscriber
transcriber = VideoTranscriber({model!r}, mode="ctc_greedy")
started = time.perf_counter()
result = transcribe_long({video!r}, transcriber)
seconds = time.perf_counter() - started
peak = peak_rss_mb()
words = len(result["text"].split())
print(json.dumps({{"seconds": seconds, "words": words, "frames": result["num_frames"],
    "gaps": len(result["gaps"]), "rss_mb": peak}}))
"""

WHOLE = """
import json, time
from bench.common import peak_rss_mb
from data_prep.video import VideoError, read_video
started = time.perf_counter()
try:
    frames, refused = read_video({video!r}, target_fps=25.0).num_frames, None
except VideoError as error:
    frames, refused = 0, error.reason
print(json.dumps({{"seconds": time.perf_counter() - started, "frames": frames, "refused": refused,
    "rss_mb": peak_rss_mb()}}))
"""


def source_clips(data_dir: Path, count: int, scratch: Path) -> list[Path]:
    clips = sorted((data_dir / "grid" / "s1" / "video").glob("*.mp4"))[:count]
    if clips:
        return clips
    from data_prep.synthetic.faces import write_synthetic_corpus

    made = write_synthetic_corpus(scratch / "faces", count, seed=3)["clips"]
    return [Path(c["video"]) for c in made]


def join_clips(clips: list[Path], minutes: float, path: Path) -> Path:
    """A video of `minutes` made of the clips one after another (repeated as needed)."""
    import cv2

    from data_prep.video import iter_frames

    total = int(minutes * 60 * 25)
    writer = None
    written = 0
    while written < total:
        for clip in clips:
            for frame in iter_frames(clip):
                if writer is None:
                    height, width = frame.shape[:2]
                    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                    writer = cv2.VideoWriter(str(path), fourcc, 25.0, (width, height))
                writer.write(frame)
                written += 1
                if written >= total:
                    break
            if written >= total:
                break
    writer.release()
    return path


def measure(script: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        completed = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        runs.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    summary = {k: v for k, v in runs[0].items() if k not in ("seconds", "rss_mb")}
    for key in ("seconds", "rss_mb"):
        summary[key] = spread([r[key] for r in runs])
    return summary


def run(output_dir: str, model: str, data_dir: str, repeats: int, lengths=(1, 10)) -> Path:
    results = {"model": model, "mode": "ctc_greedy", "repeats": repeats, "videos": {}}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        clips = source_clips(Path(data_dir), 40, scratch)
        results["source"] = str(clips[0].parent)
        for minutes in lengths:
            video = join_clips(clips, minutes, scratch / f"joined_{minutes}min.mp4")
            streamed = measure(STREAMED.format(model=model, video=str(video)), repeats)
            whole = measure(WHOLE.format(video=str(video)), repeats)
            streamed["seconds_per_video_minute"] = round(streamed["seconds"]["median"] / minutes, 1)
            results["videos"][f"{minutes:g}_min"] = {"streamed": streamed, "whole": whole}
            print(minutes, "min:", json.dumps(results["videos"][f"{minutes:g}_min"]), flush=True)
    shortest, longest = (
        results["videos"][f"{m:g}_min"]["streamed"] for m in (lengths[0], lengths[-1])
    )
    results["streamed_rss_ratio_longest_to_shortest"] = round(
        longest["rss_mb"]["median"] / shortest["rss_mb"]["median"], 2
    )
    return write_results("long_video", results, output_dir)


def define_flags() -> None:
    flags.DEFINE_string("output_dir", "bench/results", "Where long_video.json goes.")
    flags.DEFINE_string("model", "grid_s1", "Lip-reading export or shipped model name.")
    flags.DEFINE_string("data_dir", "../shared/data", "Shared data (GRID s1 clips).")
    flags.DEFINE_integer("repeats", 3, "Runs per measurement.")
    flags.DEFINE_list("minutes", ["1", "10"], "Video lengths in minutes.")


def main(argv: list[str]) -> None:
    del argv
    lengths = tuple(float(m) for m in FLAGS.minutes)
    print(run(FLAGS.output_dir, FLAGS.model, FLAGS.data_dir, FLAGS.repeats, lengths))


if __name__ == "__main__":
    define_flags()
    app.run(main)
