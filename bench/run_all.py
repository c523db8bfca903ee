"""`make bench`: runs every benchmark and writes its JSON under --output_dir."""

from absl import app, flags

from bench import lipreading_bench, memory_bench, text_bench, video_bench

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    del argv
    print(text_bench.run(FLAGS.output_dir, FLAGS.model_workdir, FLAGS.num_sentences))
    print(video_bench.run(FLAGS.output_dir))
    print(memory_bench.run(FLAGS.output_dir))
    print(
        lipreading_bench.run(
            FLAGS.output_dir, "runs/grid/export", "../shared/data/grid/s1/video/swwv6n.mp4"
        )
    )


if __name__ == "__main__":
    text_bench.define_flags()
    app.run(main)
