"""The inputs of the plan for full corpora (BUILD.md, "Plan for the full corpora"): what
preparing a clip costs here and how it grows with clips and worker processes.

    python -m bench.scale_bench --output_dir=bench/results            # GRID s1: 100, 400, 900

For each corpus size and worker count, `prepare_lipreading` (the local engine) runs on the
first clips of GRID s1 into a fresh directory; the cells run interleaved (1 worker, then 2,
at each size), the smallest size three times for its spread. Measured per cell: wall seconds,
CPU seconds of this process and its worker processes, clips and frames kept, bytes of records
and of the manifest. The training step's cost is read from bench/results/lipreading.json (the
GRID recipe's row, measured by `make bench`), with the host and load it was measured at.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags

from bench.common import write_results
from configs import grid_lipnet
from data_prep.lipreading import LipreadingSettings, corpus_clips, prepare_lipreading
from pipelines.training.distribute import local_cluster

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "bench/results", "Where scale.json goes.")
flags.DEFINE_string("grid_dir", "../shared/data/grid", "GRID corpus root (speaker s1).")
flags.DEFINE_list("clips", ["100", "400", "900"], "Corpus sizes (first clips by id).")
flags.DEFINE_list("workers", ["1", "2"], "Worker process counts.")
flags.DEFINE_integer("repeats", 3, "Runs of the smallest size, for its spread.")
flags.DEFINE_integer("train_steps", 30, "Steps of each training run (1 and 2 workers).")
flags.DEFINE_string(
    "training_bench", "bench/results/lipreading.json", "Where the training step's cost is read."
)


def recipe_settings() -> LipreadingSettings:
    """The GRID recipe's preparation (configs/grid_lipnet.py)."""
    return LipreadingSettings.from_config(grid_lipnet.get_config().data)


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished worker processes."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def prepare_cell(specs, workers: int) -> dict:
    """One preparation of `specs` with `workers` processes: its costs."""
    output = Path(tempfile.mkdtemp(prefix="lipseq_scale_"))
    try:
        settings = recipe_settings()
        cpu, started = cpu_seconds(), time.monotonic()
        manifest = prepare_lipreading(
            specs, output, settings, workers=workers, contact_sheet_clips=0
        )
        wall, cpu = time.monotonic() - started, cpu_seconds() - cpu
        records = sum(p.stat().st_size for p in output.glob("*.tfrecord"))
        kept = sum(entry["num_examples"] for entry in manifest["splits"].values())
        frames = sum(entry["num_frames"] for entry in manifest["splits"].values())
        return {
            "clips": len(specs),
            "workers": workers,
            "clips_kept": kept,
            "frames_kept": frames,
            "wall_seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2),
            "cpu_seconds_per_clip": round(cpu / len(specs), 4),
            "cpu_milliseconds_per_frame": round(1000 * cpu / max(frames, 1), 3),
            "clips_per_second": round(len(specs) / wall, 2),
            "record_bytes": records,
            "record_bytes_per_frame": round(records / max(frames, 1), 1),
            "manifest_bytes": (output / "manifest.json").stat().st_size,
            "manifest_bytes_per_clip": round((output / "manifest.json").stat().st_size / kept, 1),
            "files": len(list(output.iterdir())),
        }
    finally:
        shutil.rmtree(output, ignore_errors=True)


def training_cell(data_dir: Path, workers: int, steps: int) -> dict:
    """The GRID recipe trained `steps` steps on `workers` local processes (multi-worker over
    TF_CONFIG when 2 or more): clips a second over the whole cluster, from the chief's log
    windows after the first (which holds the graph's tracing)."""
    workdir = Path(tempfile.mkdtemp(prefix="lipseq_scale_train_"))
    command = [
        sys.executable,
        "-m",
        "pipelines",
        "train",
        "--config=configs/grid_lipnet.py",
        f"--workdir={workdir}",
        f"--config.data.prepared_dir={data_dir}",
        f"--config.num_train_steps={steps}",
        "--config.eval_every=0",
        f"--config.checkpoint_every={steps}",
        "--config.log_every=5",
        "--config.max_train_minutes=0",
    ]
    processes = []
    for tf_config in local_cluster(workers) if workers > 1 else [None]:
        env = dict(os.environ, **({"TF_CONFIG": tf_config} if tf_config else {}))
        extra = ["--strategy=multi_worker"] if tf_config else []
        processes.append(
            subprocess.Popen(command + extra, env=env, stderr=subprocess.PIPE, text=True)
        )
    for process in processes:
        _, stderr = process.communicate()
        if process.returncode:
            raise RuntimeError(f"training with {workers} workers failed: {stderr[-2000:]}")
    windows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    rates = [w["sentences_per_second"] for w in windows if "sentences_per_second" in w][1:]
    shutil.rmtree(workdir, ignore_errors=True)
    # The chief counts its own replicas' clips; every worker takes as many a step.
    return {
        "workers": workers,
        "steps": steps,
        "clips_per_second": round(workers * statistics.median(rates), 3),
    }


def _median(figure):
    """A bench figure: a number, or {"median", "min", "max"} from interleaved rounds."""
    return figure["median"] if isinstance(figure, dict) else figure


def training_step_cost(path: Path) -> dict:
    """The GRID recipe's training throughput as `make bench` measured it (lipreading.json)."""
    bench = json.loads(path.read_text())
    recipe = next(
        row for name, row in bench["throughput"].items() if "configs/grid_lipnet.py" in name
    )
    return {
        "source": str(path),
        "measured": bench["created"],
        "batch_size": bench["batch"],
        "frames_per_clip": bench["frames"],
        "clips_per_second": _median(recipe["clips_per_second"]),
        "seconds_per_step": _median(recipe["seconds_per_step"]),
        "machine": bench["machine"],
    }


def summarise(cells: list[dict]) -> dict:
    """Per size: median CPU per clip and the 2-worker speed-up over 1 worker (wall)."""
    summary = {}
    for size in sorted({cell["clips"] for cell in cells}):
        at = [cell for cell in cells if cell["clips"] == size]
        walls = {
            w: statistics.median(c["wall_seconds"] for c in at if c["workers"] == w)
            for w in {c["workers"] for c in at}
        }
        summary[str(size)] = {
            "cpu_seconds_per_clip_median": statistics.median(c["cpu_seconds_per_clip"] for c in at),
            "cpu_seconds_per_clip_spread": [
                min(c["cpu_seconds_per_clip"] for c in at),
                max(c["cpu_seconds_per_clip"] for c in at),
            ],
            "wall_speedup_2_over_1_workers": round(walls[1] / walls[2], 3)
            if {1, 2} <= walls.keys()
            else None,
            "record_bytes_per_frame": statistics.median(c["record_bytes_per_frame"] for c in at),
            "manifest_bytes_per_clip": statistics.median(c["manifest_bytes_per_clip"] for c in at),
        }
    return summary


def train_workers(specs, workers: list[int]) -> dict:
    """The GRID recipe's training throughput with 1 and 2 local workers, interleaved, three
    runs each, on these clips prepared once."""
    data_dir = Path(tempfile.mkdtemp(prefix="lipseq_scale_data_"))
    try:
        prepare_lipreading(
            specs, data_dir, LipreadingSettings(preset="gray80"), workers=2, contact_sheet_clips=0
        )
        runs = [
            training_cell(data_dir, count, FLAGS.train_steps) for _ in range(3) for count in workers
        ]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    medians = {
        count: statistics.median(r["clips_per_second"] for r in runs if r["workers"] == count)
        for count in workers
    }
    return {
        "runs": runs,
        "clips_per_second_median": {str(count): rate for count, rate in medians.items()},
        "ratio_2_over_1_workers": round(medians[2] / medians[1], 3)
        if {1, 2} <= medians.keys()
        else None,
    }


# The corpora the plan is for: all of GRID (34 speakers, about 1,000 three-second clips each, a
# few missing) and LRS3 (about 150,000 clips, 430 hours), at 25 frames a second.
CORPORA = {
    "grid_all_speakers": {"clips": 33_000, "frames": 33_000 * 75},
    "lrs3": {"clips": 150_000, "frames": 430 * 3600 * 25},
}
PLAN_WORKERS = (1, 8, 32)


def projection(summary: dict, training: dict, step_cost: dict) -> dict:
    """Preparation and training of each corpus projected from this host's figures: CPU cost
    per frame (the largest size's median), record and manifest bytes, and training clips a
    second scaled by clip length (the models' cost is linear in frames)."""
    largest = summary[max(summary, key=int)]
    per_frame = largest["cpu_seconds_per_clip_median"] / 75
    # This run's own one-worker training rate, beside make bench's for reference.
    clips_per_second = training["clips_per_second_median"]["1"]
    plan = {}
    for name, corpus in CORPORA.items():
        cpu_hours = corpus["frames"] * per_frame / 3600
        length = corpus["frames"] / corpus["clips"] / 75  # in GRID clips
        epoch_hours = corpus["clips"] * length / clips_per_second / 3600
        plan[name] = {
            **corpus,
            "prepare_cpu_hours": round(cpu_hours, 1),
            "prepare_wall_hours_at_workers": {
                str(n): round(cpu_hours / n, 2) for n in PLAN_WORKERS
            },
            "record_gigabytes": round(
                corpus["frames"] * largest["record_bytes_per_frame"] / 1e9, 1
            ),
            "manifest_megabytes": round(
                corpus["clips"] * largest["manifest_bytes_per_clip"] / 1e6, 1
            ),
            "train_epoch_hours_one_cpu_worker": round(epoch_hours, 1),
        }
    return {
        "training_clips_per_second_ratio_2_over_1_local_workers": training[
            "ratio_2_over_1_workers"
        ],
        "assumptions": (
            "preparation CPU per frame as GRID s1's (360x288 decode, Haar every 10 frames), "
            "workers scaling linearly (one core each; the 1 vs 2 worker ratios above are on "
            "one 2-core host); training cost linear in frames at this run's one-worker rate "
            "(training_workers); no GPU figure: none was lent"
        ),
        "corpora": plan,
    }


def main(argv) -> None:
    del argv
    specs = corpus_clips("grid", FLAGS.grid_dir)
    sizes = sorted(int(n) for n in FLAGS.clips)
    workers = [int(n) for n in FLAGS.workers]
    prepare_cell(specs[:10], 1)  # warm-up: imports, the detector's cascade, caches
    cells = []
    for size in sizes:
        for _ in range(FLAGS.repeats if size == sizes[0] else 1):
            for count in workers:  # interleaved: both worker counts meet the same host state
                cells.append(prepare_cell(specs[:size], count))
                print(json.dumps(cells[-1]))
    training = train_workers(specs[: sizes[-1]], workers)
    result = {
        "training_workers": training,
        "corpus": f"GRID s1 ({FLAGS.grid_dir}), first clips by id",
        "settings": "configs/grid_lipnet.py's preparation (preset gray80, Haar)",
        "preparation": cells,
        "preparation_summary": summarise(cells),
        "training_step": training_step_cost(Path(FLAGS.training_bench)),
    }
    summary = result["preparation_summary"]
    result["projection"] = projection(summary, training, result["training_step"])
    print(write_results("scale", result, FLAGS.output_dir))


if __name__ == "__main__":
    app.run(main)
