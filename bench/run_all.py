"""`make bench`: every benchmark that runs from a clean checkout, its JSON under --output_dir.

    python -m bench.run_all --output_dir=bench/results [--verbose]

In order: translation (text_bench: prepares Multi30k, or the toy corpus without
../shared/data, into a scratch folder and trains a short model for decoding speed unless
--model_workdir holds one), video preparation (video_bench: 50 GRID s1 clips, or synthetic
ones), peak memory (memory_bench: only where prepared data exists; otherwise it says so and
leaves memory.json as it was) and lip reading (lipreading_bench: random clips, so no data is
needed; latency with the shipped release models/releases/grid_s1 on a GRID s1 test clip,
skipped with a line when the clip is absent). The committed JSON's run took 11.2 minutes on
a quiet 2-core host (translation 4.2, video 0.7, lip reading 6.2; memory skipped, as a clean
checkout has no prepared data). Quiet by default: `--verbose` shows the libraries' lines.
"""

import time

from absl import app, flags

from bench import lipreading_bench, memory_bench, text_bench, video_bench
from bench.common import say
from data_prep.paths import shared_data_dir

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    del argv
    started = time.monotonic()
    clip = shared_data_dir() / "grid" / "s1" / "video" / "swwv6n.mp4"
    parts = (
        (
            "translation",
            lambda: text_bench.run(FLAGS.output_dir, FLAGS.model_workdir, FLAGS.num_sentences),
        ),
        ("video preparation", lambda: video_bench.run(FLAGS.output_dir)),
        ("memory", lambda: memory_bench.run(FLAGS.output_dir)),
        (
            "lip reading",
            lambda: lipreading_bench.run(
                FLAGS.output_dir, lipreading_bench.RELEASE_EXPORT, str(clip)
            ),
        ),
    )
    for name, part in parts:
        part_started = time.monotonic()
        written = part()
        minutes = (time.monotonic() - part_started) / 60
        say(f"{name}: {written or 'nothing written'} ({minutes:.1f} min)")
    say(f"make bench: {(time.monotonic() - started) / 60:.1f} min in all")


if __name__ == "__main__":
    text_bench.define_flags()
    app.run(main)
