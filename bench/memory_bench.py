"""Memory: peak RSS of training, and whether the video input pipeline streams.

    python -m bench.memory_bench --output_dir=bench/results

* training: peak RSS of a short training run (its own process) on the Multi30k config and,
  when a prepared GRID dataset exists, on the GRID config;
* streaming: peak RSS of one process iterating the video pipeline over 200 clips and over
  2,400 (several epochs); a streaming pipeline uses about the same memory for both. Measured
  with malloc set as lipseq sets it (pipelines.runtime) and with glibc's defaults.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from absl import app, flags

from bench.common import say, spread, write_results
from configs import grid_lipnet, multi30k_gru_attention

FLAGS = flags.FLAGS

_STREAM_SCRIPT = """
import json, sys
if sys.argv[3] == "lipseq":
    from pipelines.runtime import keep_large_buffers_off_the_heap
    keep_large_buffers_off_the_heap()
import tensorflow as tf
from bench.common import peak_rss_mb
from data_prep.records import read_manifest, split_files
from pipelines.inputs.video import make_video_dataset
prepared, count = sys.argv[1], int(sys.argv[2])
manifest = read_manifest(prepared, "lipreading")
files = split_files(prepared, manifest, "train")
stats = manifest["normalisation"]
dataset = make_video_dataset(files, mean=stats["mean"], std=stats["std"], batch_size=8,
                             training=True).unbatch().repeat().take(count).padded_batch(8)
frames = 0
for batch in dataset:
    frames += int(tf.reduce_sum(batch["input_lengths"]))
print(json.dumps({"clips": count, "frames": frames,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def _peak_rss_of(command: list[str]) -> dict:
    # The command starts from a small wrapper process: the peak that ru_maxrss carries across
    # fork and exec is then the wrapper's few MiB, not this (possibly large) bench process's.
    script = (
        "import json, resource, subprocess, sys\n"
        "result = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(json.dumps({'returncode': result.returncode, 'tail': result.stderr[-400:],\n"
        "  'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *command], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


REPEATS = 3


def training_memory(config: str, prepared_dir: str, steps: int, repeats: int = REPEATS) -> dict:
    """Peak RSS of `steps` training steps of `config`, each repeat in a fresh process."""
    peaks, failure = [], None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as workdir:
            result = _peak_rss_of(
                [
                    sys.executable,
                    "-m",
                    "pipelines",
                    "train",
                    f"--config={config}",
                    f"--workdir={workdir}",
                    f"--config.data.prepared_dir={prepared_dir}",
                    f"--config.num_train_steps={steps}",
                    "--config.eval_every=0",
                    f"--config.log_every={steps}",
                    f"--config.checkpoint_every={steps}",
                ]
            )
        if result["returncode"] != 0:
            failure = result["tail"]
            break
        peaks.append(result["peak_rss_mb"])
    return {
        "config": config,
        "steps": steps,
        "ok": failure is None,
        **({"peak_rss_mb": spread(peaks)} if failure is None else {"error": failure}),
    }


def streaming_memory(
    prepared_dir: str, clips: int, allocator: str = "lipseq", repeats: int = REPEATS
) -> dict:
    """Peak RSS of iterating `clips` clips through the training video pipeline, each repeat in
    a fresh process; allocator "lipseq" sets malloc as every lipseq verb does
    (pipelines.runtime), "glibc" leaves glibc's defaults."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", _STREAM_SCRIPT, prepared_dir, str(clips), allocator],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {**runs[0], "peak_rss_mb": spread([r["peak_rss_mb"] for r in runs])}


TRAINING_RUNS = (
    # (config, module whose prepared_dir it trains on, steps)
    ("configs/multi30k_gru_attention.py", multi30k_gru_attention, 30),
    ("configs/grid_lipnet.py", grid_lipnet, 20),
)


def _missing(prepared_dir: str, config: str) -> str | None:
    """Why `config` cannot be measured on `prepared_dir`, or None when it can."""
    if (Path(prepared_dir) / "manifest.json").is_file():
        return None
    return f"{config}: no prepared data at {prepared_dir} (lipseq prepare --config={config})"


def run(output_dir: str, multi30k_dir: str = "", grid_dir: str = "") -> Path | None:
    """Writes <output_dir>/memory.json; each config trains on its own prepared_dir unless a
    directory is given. Without any prepared data it measures nothing and writes nothing (the
    figures there stay), saying why."""
    results: dict = {"repeats": REPEATS, "training": [], "video_streaming": None, "skipped": []}
    given = {grid_lipnet: grid_dir, multi30k_gru_attention: multi30k_dir}
    for config, module, steps in TRAINING_RUNS:
        prepared_dir = given[module] or module.get_config().data.prepared_dir
        reason = _missing(prepared_dir, config)
        if reason:
            results["skipped"].append(reason)
            continue
        results["training"].append(training_memory(config, prepared_dir, steps))
        if module is grid_lipnet:
            # 200 clips, then 2,400 (three epochs and more of GRID s1's 732 training clips).
            results["video_streaming"] = {}
            for allocator in ("lipseq", "glibc"):
                small = streaming_memory(prepared_dir, 200, allocator)
                large = streaming_memory(prepared_dir, 2400, allocator)
                growth = large["peak_rss_mb"]["median"] - small["peak_rss_mb"]["median"]
                results["video_streaming"][allocator] = {
                    "small": small,
                    "large": large,
                    "growth_mb": round(growth, 1),
                }
    for reason in results["skipped"]:
        say(f"memory bench skips {reason}")
    if not results["training"]:
        say(f"memory bench measured nothing; {output_dir}/memory.json left as it was")
        return None
    return write_results("memory", results, output_dir)


def define_flags() -> None:
    """Defines this benchmark's flags (only when run as a program)."""
    flags.DEFINE_string("output_dir", "bench/results", "Where the JSON goes.")
    flags.DEFINE_string("multi30k_dir", "", "Prepared Multi30k (default: its config's).")
    flags.DEFINE_string("grid_dir", "", "Prepared GRID (default: configs/grid_lipnet.py's).")


def main(argv: list[str]) -> None:
    del argv
    print(run(FLAGS.output_dir, FLAGS.multi30k_dir, FLAGS.grid_dir))


if __name__ == "__main__":
    define_flags()
    app.run(main)
