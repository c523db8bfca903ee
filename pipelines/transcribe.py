"""Lip reading from a raw face video: data prep, then the exported model.

    python -m pipelines.transcribe --video=clip.mp4 --model=runs/grid/export \
        [--mode=joint|attention|ctc_greedy|ctc_beam] [--grammar] [--alignment_png=out.png]

Prints the text (and timings). The crop settings come from the export's assets.extra, so the
video is prepared exactly as the training data was.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS


def load_transcriber(model_dir: str | Path, mode: str | None = None, grammar: bool = False):
    """(signature function, export info) for a lip-reading SavedModel."""
    import tensorflow as tf

    from pipelines.export import read_export_info

    info = read_export_info(model_dir)
    if info.get("task") != "lipreading":
        raise ValueError(f"{model_dir} is a {info.get('task')!r} model, not lip reading")
    name = mode or "serving_default"
    if grammar:
        name = f"{mode or info['serving_default']}_grammar"
    loaded = tf.saved_model.load(str(model_dir))
    if name not in loaded.signatures:
        raise ValueError(f"{model_dir} has no signature {name!r}; has {sorted(loaded.signatures)}")
    signature = loaded.signatures[name]
    return (lambda frames, lengths: signature(frames=frames, lengths=lengths)), info, loaded


def transcribe_video(
    video: str | Path, model_dir: str | Path, mode: str | None = None, grammar: bool = False
) -> dict:
    """Text, score, alignments, crops and a timing breakdown for one raw video."""
    import tensorflow as tf

    from data_prep.lipreading import LipreadingSettings, mouth_crops

    timings = {}
    started = time.monotonic()
    function, info, _ = load_transcriber(model_dir, mode, grammar)
    timings["load_model"] = time.monotonic() - started
    prep = info["prep"]
    settings = LipreadingSettings(
        preset=prep["preset"],
        target_fps=prep["target_fps"],
        detector=prep["detector"],
        detect_every=prep["detect_every"],
        max_gap_frames=prep["max_gap_frames"],
    )
    started = time.monotonic()
    crops, _, _ = mouth_crops(video, settings)
    timings["prepare"] = time.monotonic() - started
    started = time.monotonic()
    out = function(tf.constant(crops[None]), tf.constant([len(crops)], tf.int32))
    text = out["text"].numpy()[0].decode()
    timings["model"] = time.monotonic() - started
    return {
        "text": text,
        "score": float(out["scores"].numpy()[0]),
        "alignments": out["alignments"].numpy()[0],
        "crops": crops,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
    }


def plot_alignment_over_frames(
    alignment: np.ndarray, crops: np.ndarray, text: str, path: str | Path
) -> Path:
    """Attention weights [output chars, frames] drawn above a strip of the mouth frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    characters = list(text) + ["</s>"]
    alignment = alignment[: len(characters), : len(crops)]
    picks = np.linspace(0, len(crops) - 1, min(12, len(crops))).round().astype(int)
    strip = np.concatenate([crops[i] for i in picks], axis=1)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), gridspec_kw={"height_ratios": [3, 1]}
    )
    top.imshow(alignment, aspect="auto", cmap="viridis", vmin=0, vmax=max(alignment.max(), 1e-6))
    top.set_yticks(range(len(characters)), ["␣" if c == " " else c for c in characters], fontsize=7)
    top.set_xlabel("frame")
    top.set_title(f"attention: {text!r}")
    bottom.imshow(strip.squeeze(), cmap="gray" if strip.shape[-1] == 1 else None)
    bottom.set_xticks(
        [(i + 0.5) * crops.shape[2] for i in range(len(picks))], [str(i) for i in picks], fontsize=7
    )
    bottom.set_yticks([])
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def define_flags() -> None:
    """Defines this entry point's flags (only when run as a program)."""
    flags.DEFINE_string("video", None, "Raw face video (any container OpenCV's FFmpeg reads).")
    flags.DEFINE_string("model", None, "Exported lip-reading SavedModel directory.")
    flags.DEFINE_enum(
        "mode",
        None,
        ["ctc_greedy", "ctc_beam", "attention", "joint"],
        "Decoding mode [the export's serving_default].",
    )
    flags.DEFINE_bool("grammar", False, "Constrain the output to the model's grammar.")
    flags.DEFINE_string("alignment_png", None, "Draw the attention map over the frames here.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from data_prep.lipreading import ClipSkipped

    try:
        result = transcribe_video(FLAGS.video, FLAGS.model, FLAGS.mode, FLAGS.grammar)
    except (ClipSkipped, ValueError, FileNotFoundError) as error:
        raise SystemExit(f"transcribe: error: {error}") from None
    print(result["text"])
    print(f"score {result['score']:.3f}; seconds {result['seconds']}")
    if FLAGS.alignment_png:
        if result["alignments"].size == 0:
            print("no attention alignments in this mode (CTC); no picture drawn")
        else:
            path = plot_alignment_over_frames(
                result["alignments"], result["crops"], result["text"], FLAGS.alignment_png
            )
            print(f"alignment: {path}")


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["video", "model"])
    app.run(main)
