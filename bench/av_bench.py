"""Audio-visual benchmarks: training throughput of the Watch, Listen, Attend and Spell model
next to the video-only GRID recipe, transcription latency per modality, and peak memory.

    python -m bench.av_bench --output_dir=bench/results [--export=runs/grid/wlas_export]

Throughput runs a compiled training step (each model's own loss terms) on random 3-second
clips, batch 16: 75 gray 80x40 frames, and for the audio-visual model also 48,000 samples of
16 kHz sound. Both models are timed in one process, traced and warmed up outside the timed
window, then in 3 rounds in which they take turns: median, min and max, the ratio taken
within each round. Latency transcribes one raw GRID s1 test clip per
modality with the export loaded once (load time apart). Memory is the peak RSS of a short
training run of each config, each in its own process, on the same prepared clips.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import app, flags

from bench.common import peak_rss_mb, write_results
from bench.lipreading_bench import (
    BATCH,
    FRAMES,
    GRAY80,
    _model,
    count_parameters,
    interleaved_throughput,
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


def audio_visual_step(vocab_size: int):
    """(parameters, a call of one training step of configs/grid_wlas.py's model on both
    streams of a random batch)."""
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

    return count_parameters(model), functools.partial(training_step(model), batch)


def run(output_dir: str, export_dir: str | None, video: str | None, prepared_dir: str) -> Path:
    """Writes <output_dir>/audio_visual.json."""
    vocab_size = CharVocabulary().size
    video_model = _model(GRAY80, vocab_size)
    both_parameters, both_step = audio_visual_step(vocab_size)
    calls = {
        "video_only": functools.partial(
            training_step(video_model), random_batch(GRAY80, vocab_size)
        ),
        "audio_visual": both_step,
    }
    rows = interleaved_throughput(calls, "video_only", rounds=3, steps=4)
    video_only = {"parameters": count_parameters(video_model), **rows["video_only"]}
    both = {"parameters": both_parameters, **rows["audio_visual"]}
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
