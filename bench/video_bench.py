"""Video data-prep benchmarks: decode vs full mouth-crop preparation, and frame storage.

    python -m bench.video_bench --output_dir=bench/results

Figures (written to <output_dir>/video_prep.json), on 50 GRID s1 clips (every 18th by id; 20
synthetic clips when ../shared/data is absent), with the GRID recipe's preparation settings
(configs/grid_lipnet.py), warmed up first (files read once, one clip prepared, one CLI run):
  * `rounds` rounds, each (a) one pass in this process (cv2.setNumThreads(1), and FFmpeg asked
    for one decoder thread through OPENCV_FFMPEG_CAPTURE_OPTIONS set before OpenCV is imported;
    whether FFmpeg obeys is measured below, not assumed), clip by clip side by side:
    decode-only frames/s (`iter_frames`), decode + `read_video` frames/s, full `process_clip`
    frames/s, their ratios and per-stage milliseconds per clip; then (b) the CLI
    (`lipseq prepare --config=grid_lipnet --config.data.workers=2`, a fresh process, start-up
    apart) on the same clips, its rate over (a)'s full preparation taken within the round.
    Every figure is the median, min and max over rounds;
  * whether that environment variable really limits FFmpeg's decoder threads (threads alive
    while decoding and CPU time over wall time, against CAP_PROP_N_THREADS=1);
  * frame storage of the recipe's crops: bytes per clip and tf.data parse + decode clips/s for
    raw uint8, per-frame PNG and per-frame JPEG (quality 95), median of 3 passes after one.
"""

import os

FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
os.environ.setdefault(FFMPEG_OPTIONS_ENV, "threads;1")

import contextlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from bench.common import peak_rss_mb, say, spread, write_results  # noqa: E402
from configs import grid_lipnet  # noqa: E402
from data_prep import lipreading, video  # noqa: E402
from data_prep.corpora.transcripts import ClipSpec  # noqa: E402
from data_prep.lipreading import LipreadingSettings, corpus_clips, process_clip  # noqa: E402
from data_prep.paths import PROJECT_ROOT, shared_data_dir  # noqa: E402
from data_prep.synthetic.faces import write_synthetic_corpus  # noqa: E402

FLAGS = flags.FLAGS
GRID_EVERY = 18
GRID_CLIPS = 50
SYNTHETIC_CLIPS = 20
# process_clip's stages, by the names data_prep.lipreading calls them through (patched there,
# so the timer sees exactly the calls preparation makes).
STAGES = {
    "read_video": "read_video",
    "corrupt_check": "corrupt_frames",
    "track_mouth": "track_mouth",
    "crop": "crop_mouths",
    "roi_stats": "roi_statistics",
}


def bench_clips(scratch: Path) -> tuple[str, Path, list[ClipSpec]]:
    """(corpus name, GRID-layout root, clips): GRID s1 every 18th clip, else synthetic ones."""
    grid = shared_data_dir() / "grid"
    if (grid / "s1" / "video").is_dir():
        specs = corpus_clips("grid", grid)[::GRID_EVERY][:GRID_CLIPS]
        root = scratch / "grid_subset"
        for sub in ("video", "align"):
            (root / "s1" / sub).mkdir(parents=True)
        for spec in specs:
            (root / "s1" / "video" / spec.video_path.name).symlink_to(spec.video_path)
            align = grid / "s1" / "align" / f"{spec.id}.align"
            (root / "s1" / "align" / align.name).symlink_to(align)
        return "grid_s1", root, specs
    root = scratch / "synthetic"
    write_synthetic_corpus(root, SYNTHETIC_CLIPS, seed=0)
    return "synthetic", root, corpus_clips("grid", root)


class StageTimer:
    """Wall seconds spent in the functions process_clip calls, per stage, while active."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.calls = dict.fromkeys(STAGES, 0)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        originals = {name: getattr(lipreading, attr) for name, attr in STAGES.items()}
        try:
            for name, attr in STAGES.items():
                setattr(lipreading, attr, self._timed(name, originals[name]))
            yield
        finally:
            for name, attr in STAGES.items():
                setattr(lipreading, attr, originals[name])

    def _timed(self, name: str, function: Callable) -> Callable:
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed


class Clock:
    """Accumulated wall and process CPU seconds over many measured calls."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    @contextlib.contextmanager
    def measure(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu

    def figures(self, frames: int, clips: int) -> dict:
        return {
            "seconds": round(self.wall, 3),
            "frames_per_second": round(frames / self.wall, 1),
            "clips_per_second": round(clips / self.wall, 2),
            "cpu_over_wall": round(self.cpu / self.wall, 2),
        }


def per_process_round(specs: list[ClipSpec], settings: LipreadingSettings) -> tuple[dict, list]:
    """One pass over the clips in this process: decode-only, read_video and full process_clip
    of each clip side by side, with process_clip's time per stage."""
    clocks = {"decode_only": Clock(), "decode_read_video": Clock(), "full_prep": Clock()}
    timer = StageTimer()
    frames = {"decode_only": 0, "decode_read_video": 0, "full_prep": 0}
    kept, skipped, crops = 0, {}, []
    for spec in specs:
        with clocks["decode_only"].measure():
            frames["decode_only"] += sum(1 for _ in video.iter_frames(spec.video_path))
        with clocks["decode_read_video"].measure():
            frames["decode_read_video"] += video.read_video(spec.video_path).num_source_frames
        with clocks["full_prep"].measure(), timer.active():
            result = process_clip(spec, "train", settings)
        frames["full_prep"] += result.num_source_frames
        if result.skip_reason:
            skipped[spec.id] = result.skip_reason
        else:
            kept += 1
            crops.append(result.crops)
    figures = {name: clock.figures(frames[name], len(specs)) for name, clock in clocks.items()}
    stages = {name: 1000 * s / len(specs) for name, s in timer.seconds.items()}
    stages["other"] = 1000 * clocks["full_prep"].wall / len(specs) - sum(stages.values())
    stages["read_video_beyond_decode"] = stages["read_video"] - (
        1000 * clocks["decode_only"].wall / len(specs)
    )
    decode = figures["decode_only"]["frames_per_second"]
    figures["full_over_decode"] = figures["full_prep"]["frames_per_second"] / decode
    figures["read_video_over_decode"] = figures["decode_read_video"]["frames_per_second"] / decode
    figures["stage_ms_per_clip"] = stages
    figures["kept"], figures["skipped"] = kept, skipped
    return figures, crops


def summarise_rounds(rounds: list[dict]) -> dict:
    """Median, min and max over rounds of every per-process and CLI figure."""
    summary = {
        name: {
            key: spread([r[name][key] for r in rounds], 2)
            for key in ("frames_per_second", "clips_per_second", "cpu_over_wall")
        }
        for name in ("decode_only", "decode_read_video", "full_prep")
    }
    for key in ("full_over_decode", "read_video_over_decode", "cli_over_full_prep"):
        summary[key] = spread([r[key] for r in rounds], 3)
    summary["stage_ms_per_clip"] = {
        stage: spread([r["stage_ms_per_clip"][stage] for r in rounds], 2)
        for stage in rounds[0]["stage_ms_per_clip"]
    }
    summary["kept"], summary["skipped"] = rounds[-1]["kept"], rounds[-1]["skipped"]
    summary["rounds"] = len(rounds)
    summary["target_full_over_decode"] = 0.75
    return summary


def _decode_threads(path: Path, params: list[int], repeats: int) -> dict:
    """Threads alive while a capture decodes, and CPU over wall time, for one way of opening."""
    before = len(os.listdir("/proc/self/task"))
    during = 0
    frames = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
        try:
            while capture.read()[0]:
                frames += 1
                during = max(during, len(os.listdir("/proc/self/task")))
        finally:
            capture.release()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "extra_threads_while_decoding": during - before,
        "frames_per_second": round(frames / wall, 1),
        "cpu_over_wall": round(cpu / wall, 2),
    }


@contextlib.contextmanager
def _ffmpeg_options(value: str | None) -> Iterator[None]:
    """Sets (or removes) OPENCV_FFMPEG_CAPTURE_OPTIONS for captures opened inside."""
    saved = os.environ.get(FFMPEG_OPTIONS_ENV)
    if value is None:
        os.environ.pop(FFMPEG_OPTIONS_ENV, None)
    else:
        os.environ[FFMPEG_OPTIONS_ENV] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(FFMPEG_OPTIONS_ENV, None)
        else:
            os.environ[FFMPEG_OPTIONS_ENV] = saved


def bench_decode_threads(path: Path, repeats: int = 20) -> dict:
    """Does OPENCV_FFMPEG_CAPTURE_OPTIONS=threads;1 limit decoding threads? Compared ways."""
    cv2.setNumThreads(1)
    results = {}
    for name, env, params in (
        ("env_threads_1", "threads;1", []),
        ("env_unset", None, []),
        ("cap_prop_n_threads_1", None, [cv2.CAP_PROP_N_THREADS, 1]),
    ):
        with _ffmpeg_options(env):
            _decode_threads(path, params, 1)
            results[name] = _decode_threads(path, params, repeats)
    results["clip"] = path.name
    results["env_limits_decoder_threads"] = (
        results["env_threads_1"]["extra_threads_while_decoding"]
        < results["env_unset"]["extra_threads_while_decoding"]
    )
    return results


def bench_cli(root: Path, scratch: Path, workers: int, name: str = "") -> dict:
    """The lip-reading CLI with worker processes on the benchmark clips (a fresh output dir)."""
    output_dir = scratch / f"cli_workers{workers}{name}"
    env = {k: v for k, v in os.environ.items() if k != FFMPEG_OPTIONS_ENV}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    # The GRID recipe's own preparation settings, as measured per process; only where to
    # read, where to write and the workers are overridden.
    command = [
        sys.executable,
        "-m",
        "pipelines",
        "prepare",
        f"--config={PROJECT_ROOT / 'configs' / 'grid_lipnet.py'}",
        "--config.data.dataset=grid",
        f"--config.data.input_dir={root}",
        f"--config.data.prepared_dir={output_dir}",
        f"--config.data.workers={workers}",
    ]
    started = time.perf_counter()
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    manifest = json.loads((output_dir / "manifest.json").read_text())
    timing = manifest["timing"]
    clips = sum(e["num_examples"] + e["num_skipped"] for e in manifest["splits"].values())
    return {
        "workers": workers,
        "clips": clips,
        "wall_seconds_incl_startup": round(wall, 2),
        "clips_per_second_incl_startup": round(clips / wall, 2),
        "prep_seconds": timing["seconds"],
        "clips_per_second": timing["clips_per_second"],
        "frames_per_second": timing["frames_per_second"],
        "skipped_by_reason": manifest["skipped_by_reason"],
        "same_settings_as_per_process": manifest["settings"] == recipe_settings().to_dict(),
    }


def _encode(crops: np.ndarray, encoding: str) -> list[bytes]:
    if encoding == "raw_uint8":
        return [np.ascontiguousarray(crops).tobytes()]
    ext, params = {"png": (".png", []), "jpeg95": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95])}[
        encoding
    ]
    out = []
    for frame in crops:
        # OpenCV writes BGR; a gray crop ([H, W, 1]) is encoded as the one channel it is.
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if frame.shape[-1] == 3 else frame
        ok, data = cv2.imencode(ext, image, params)
        if not ok:
            raise RuntimeError(f"cannot encode a frame as {encoding}")
        out.append(data.tobytes())
    return out


def _parser(encoding: str, shape: tuple[int, int, int]) -> Callable:
    height, width, channels = shape
    if encoding == "raw_uint8":
        spec = {
            "frames": tf.io.FixedLenFeature([], tf.string),
            "num_frames": tf.io.FixedLenFeature([], tf.int64),
        }

        def parse(serialized):
            ex = tf.io.parse_single_example(serialized, spec)
            return tf.reshape(
                tf.io.decode_raw(ex["frames"], tf.uint8), [-1, height, width, channels]
            )

        return parse
    decode = tf.io.decode_png if encoding == "png" else tf.io.decode_jpeg
    spec = {"frames": tf.io.VarLenFeature(tf.string)}

    def parse(serialized):
        encoded = tf.sparse.to_dense(tf.io.parse_single_example(serialized, spec)["frames"])
        return tf.map_fn(
            lambda frame: decode(frame, channels=channels),
            encoded,
            fn_output_signature=tf.TensorSpec([height, width, channels], tf.uint8),
        )

    return parse


def bench_frame_storage(crops: list[np.ndarray], scratch: Path, epochs: int = 3) -> dict:
    """Bytes per clip and single-threaded tf.data parse + decode speed per frame encoding:
    a first pass (which warms up and checks the pixels), then `epochs` timed passes, median,
    min and max."""
    from data_prep import records

    shape = crops[0].shape[1:]
    num_frames = sum(len(c) for c in crops)
    results = {"preset": recipe_settings().preset, "frame_shape": list(shape), "clips": len(crops)}
    results["passes"] = epochs
    for encoding in ("raw_uint8", "png", "jpeg95"):
        path = scratch / f"storage_{encoding}.tfrecord"
        started = time.perf_counter()
        encoded = [_encode(c, encoding) for c in crops]
        encode_seconds = time.perf_counter() - started
        with tf.io.TFRecordWriter(str(path)) as writer:
            for clip, frames in zip(crops, encoded, strict=True):
                writer.write(
                    records.serialize(
                        {
                            "frames": records.bytes_feature(frames),
                            "num_frames": records.int64_feature(len(clip)),
                        }
                    )
                )
        options = tf.data.Options()
        options.threading.private_threadpool_size = 1
        options.threading.max_intra_op_parallelism = 1
        dataset = tf.data.TFRecordDataset(str(path)).map(_parser(encoding, shape))
        dataset = dataset.with_options(options)
        decoded = [d.numpy() for d in dataset]  # also the warm-up pass
        passes = []
        for _ in range(epochs):
            started = time.perf_counter()
            for _ in dataset:
                pass
            passes.append(time.perf_counter() - started)
        error = np.concatenate(
            [
                (d.astype(np.int16) - c.astype(np.int16)).reshape(-1)
                for d, c in zip(decoded, crops, strict=True)
            ]
        )
        mse = float(np.mean(error.astype(np.float64) ** 2))
        results[encoding] = {
            "bytes_per_clip": round(path.stat().st_size / len(crops)),
            "bytes_per_frame": round(path.stat().st_size / num_frames, 1),
            "read_decode_clips_per_second": spread([len(crops) / t for t in passes], 1),
            "read_decode_frames_per_second": spread([num_frames / t for t in passes], 1),
            "encode_ms_per_clip": round(1000 * encode_seconds / len(crops), 2),
            "lossless": bool(mse == 0.0),
            "mean_abs_error": round(float(np.abs(error).mean()), 3),
            "psnr_db": None if mse == 0 else round(10 * np.log10(255.0**2 / mse), 2),
        }
    raw = results["raw_uint8"]["bytes_per_clip"]
    for encoding in ("png", "jpeg95"):
        results[encoding]["size_vs_raw"] = round(results[encoding]["bytes_per_clip"] / raw, 3)
    return results


def recipe_settings() -> LipreadingSettings:
    """The GRID recipe's preparation settings (configs/grid_lipnet.py), what the CLI runs."""
    return LipreadingSettings.from_config(grid_lipnet.get_config().data)


def rounds_with_cli(specs, root: Path, scratch: Path, rounds: int, workers: int):
    """`rounds` rounds, each a per-process pass over the clips and then the CLI on them, so
    the two see the same host; returns every round's figures and the last pass's crops."""
    cv2.setNumThreads(1)
    settings = recipe_settings()
    for spec in specs:
        spec.video_path.read_bytes()  # the files in the page cache before any timing
    process_clip(specs[0], "train", settings)  # warm-up: the detector and the decoder loaded
    bench_cli(root, scratch, workers, "_warm_up")
    every_round, cli_runs = [], []
    for index in range(rounds):
        figures, crops = per_process_round(specs, settings)
        cli_runs.append(bench_cli(root, scratch, workers, f"_round{index}"))
        figures["cli_over_full_prep"] = (
            cli_runs[-1]["frames_per_second"] / figures["full_prep"]["frames_per_second"]
        )
        every_round.append(figures)
    return every_round, cli_runs, crops


def cli_summary(cli_runs: list[dict]) -> dict:
    """The CLI's figures over rounds (median, min, max), with its last run's counts."""
    summary = {
        k: v
        for k, v in cli_runs[-1].items()
        if isinstance(v, bool) or not isinstance(v, int | float)
    }
    summary["workers"], summary["clips"] = cli_runs[-1]["workers"], cli_runs[-1]["clips"]
    for key in (
        "wall_seconds_incl_startup",
        "prep_seconds",
        "clips_per_second",
        "frames_per_second",
    ):
        summary[key] = spread([run[key] for run in cli_runs], 2)
    summary["runs"] = len(cli_runs)
    return summary


def run(output_dir: str | os.PathLike, rounds: int = 3, workers: int = 2) -> Path:
    """Runs every video-prep benchmark and writes video_prep.json."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-video-"))
    try:
        corpus, root, specs = bench_clips(scratch)
        say(
            f"video: {rounds} rounds of preparation on {len(specs)} {corpus} clips, one process "
            f"and the CLI with {workers} workers"
        )
        every_round, cli_runs, crops = rounds_with_cli(specs, root, scratch, rounds, workers)
        per_process = summarise_rounds(every_round)
        per_process["peak_rss_mb_so_far"] = round(peak_rss_mb(), 1)
        results = {
            "corpus": corpus,
            "num_clips": len(specs),
            "clip_selection": f"every {GRID_EVERY}th GRID s1 clip by id"
            if corpus == "grid_s1"
            else f"{SYNTHETIC_CLIPS} synthetic clips",
            "settings": recipe_settings().to_dict(),
            "threads": {
                "cv2_num_threads": cv2.getNumThreads(),
                FFMPEG_OPTIONS_ENV: os.environ.get(FFMPEG_OPTIONS_ENV),
                "opencv": cv2.__version__,
            },
            "per_process": per_process,
            "cli": cli_summary(cli_runs),
        }
        results["cli"]["note"] = f"{FFMPEG_OPTIONS_ENV} unset, as a user would run it"
        say("video: decoder threads and frame storage")
        results["threads"]["decoder_threads_check"] = bench_decode_threads(specs[0].video_path)
        results["frame_storage"] = bench_frame_storage(crops, scratch)
        results["peak_rss_mb"] = round(peak_rss_mb(), 1)
        return write_results("video_prep", results, output_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def define_flags() -> None:
    """Defines this benchmark's flags (only when run as a program)."""
    flags.DEFINE_string("output_dir", "bench/results", "Where the JSON goes.")
    flags.DEFINE_integer("rounds", 3, "Rounds: a pass over the clips and a CLI run each.")
    flags.DEFINE_integer("workers", 2, "Worker processes for the CLI figure.")


def main(argv: list[str]) -> None:
    del argv
    print(run(FLAGS.output_dir, FLAGS.rounds, FLAGS.workers))


if __name__ == "__main__":
    define_flags()
    app.run(main)
