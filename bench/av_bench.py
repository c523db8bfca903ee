"""Audio-visual benchmarks: training throughput of the Watch, Listen, Attend and Spell model
next to the video-only GRID recipe, transcription latency per modality, and peak memory.

    python -m bench.av_bench --output_dir=bench/results [--export=runs/grid/wlas_export]

Throughput runs a compiled training step (each model's own loss terms) on random 3-second
clips, batch 16: 75 gray 80x40 frames, and for the audio-visual model also 48,000 samples of
16 kHz sound. Both models are timed in one process, traced and warmed up outside the timed
window, in 3 rounds: median, min and max. Latency transcribes one raw GRID s1 test clip per
modality with the export loaded once (load time apart). Memory is the peak RSS of a short
training run of each config, each in its own process, on the same prepared clips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import app, flags

from bench.common import peak_rss_mb, write_results
from bench.lipreading_bench import (
    BATCH,
    FRAMES,
    GRAY80,
    count_parameters,
    measure_step,
    ours_throughput,
    random_batch,
    training_step,
    transcription_latency,
)
from bench.memory_bench import training_memory
from configs import grid_wlas
from data_prep.audio import SAMPLE_RATE
from data_prep.characters import CharVocabulary
from models.multistream import build_multistream_model

FLAGS = flags.FLAGS
SECONDS = FRAMES / 25.0


def audio_visual_throughput(vocab_size: int) -> dict:
    """Clips/s of a training step of configs/grid_wlas.py's model (both streams)."""
    config = grid_wlas.get_config().model
    with config.unlocked():
        config.frame_shape = GRAY80
    model = build_multistream_model(config, vocab_size)
    video = random_batch(GRAY80, vocab_size)
    samples = int(SECONDS * SAMPLE_RATE)
    rng = np.random.default_rng(1)
    batch = {
        **video,
        "inputs": {
            "video": video["inputs"],
            "audio": tf.constant(0.1 * rng.standard_normal((BATCH, samples)), tf.float32),
        },
        "input_lengths": {"video": video["input_lengths"], "audio": tf.fill([BATCH], samples)},
    }

    step = training_step(model)
    return {"parameters": count_parameters(model), **measure_step(step, batch)}


def run(output_dir: str, export_dir: str | None, video: str | None, prepared_dir: str) -> Path:
    """Writes <output_dir>/audio_visual.json."""
    vocab_size = CharVocabulary().size
    video_only = ours_throughput(GRAY80, vocab_size)
    both = audio_visual_throughput(vocab_size)
    both["ratio_to_video_only"] = round(
        both["clips_per_second"] / video_only["clips_per_second"], 2
    )
    results: dict = {
        "batch": BATCH,
        "frames": FRAMES,
        "audio_samples": int(SECONDS * SAMPLE_RATE),
        "throughput": {
            "video only (configs/grid_lipnet.py)": video_only,
            "audio-visual (configs/grid_wlas.py)": both,
        },
    }
    if export_dir and video and Path(export_dir).is_dir():
        results["latency"] = {
            modality: transcription_latency(export_dir, video, modality=modality)
            for modality in ("video", "audio", "audio_visual")
        }
    results["peak_rss_mb_of_this_process"] = round(peak_rss_mb(), 1)
    if (Path(prepared_dir) / "manifest.json").is_file():
        results["training_memory"] = [
            training_memory(config, prepared_dir, 20)
            for config in ("configs/grid_lipnet.py", "configs/grid_wlas.py")
        ]
    return write_results("audio_visual", results, output_dir)


def define_flags() -> None:
    """Defines this benchmark's flags (only when run as a program)."""
    flags.DEFINE_string("output_dir", "bench/results", "Where the JSON goes.")
    flags.DEFINE_string("export", "runs/grid/wlas_export", "Exported audio-visual model.")
    flags.DEFINE_string(
        "video",
        "../shared/data/grid/s1/video/swwv6n.mp4",
        "A raw 3-second clip with sound to transcribe (a GRID s1 test-split clip).",
    )
    flags.DEFINE_string(
        "prepared_dir", "runs/grid/data_gray80_audio", "Prepared GRID clips with audio."
    )


def main(argv: list[str]) -> None:
    del argv
    print(run(FLAGS.output_dir, FLAGS.export, FLAGS.video, FLAGS.prepared_dir))


if __name__ == "__main__":
    define_flags()
    app.run(main)
