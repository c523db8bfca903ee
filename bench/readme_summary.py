"""README's results summary, read from the result files: one row per headline figure.

python -m bench.readme_summary     prints the markdown table README.md carries
(tests/test_docs.py fails when README's table and these files disagree). Standard library
only: no TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
GRID_S1 = ROOT / "models" / "releases" / "grid_s1"
MULTI30K = ROOT / "bench" / "results" / "multi30k_lstm_bahdanau_45min.json"
HEADER = ("result", "figure", "details")


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _grid_release() -> tuple[str, str, str]:
    summary = _read(GRID_S1 / "eval_test_summary.json")
    config = _read(GRID_S1 / "config.json")
    mode = config["decode"]["serving_default"]
    scores = summary["modes"][mode]
    figure = (
        f"WER {scores['wer']:.2f} % (CER {scores['cer']:.2f}), {mode} beam, "
        f"{summary['num_clips']} test clips"
    )
    return (
        "GRID s1 held-out, the release `grid_s1`",
        figure,
        f"[grid.md](docs/results/grid.md), `{_rel(GRID_S1 / 'eval_test_summary.json')}`",
    )


def _grid_frame_labels() -> tuple[str, str, str]:
    names = ("grid_avx2_host_frame_labels_hour.json", "grid_avx2_host_frame_labels_hour_2.json")
    wers = [_read(RESULTS / n)["latest_checkpoint"]["test"]["attention"]["wer"] for n in names]
    runs = " and ".join(f"{w:.2f}" for w in wers)
    figure = f"WER {runs} %, attention beam, two hours on 2 CPU cores"
    return (
        "GRID s1 held-out, README's commands today (frame labels)",
        figure,
        "[grid.md](docs/results/grid.md), `bench/results/grid_avx2_host_frame_labels_hour*.json`",
    )


def _audio_visual() -> tuple[str, str, str]:
    path = RESULTS / "grid_wlas_half_hours_eval_snr.json"
    table = _read(path)["summary"]["table"]
    both, sound = table["audio_visual"]["joint"], table["audio"]["joint"]
    figure = (
        f"WER {both['clean']['wer']:.2f} % clean, {both['0']['wer']:.2f} at 0 dB babble "
        f"(sound alone {sound['clean']['wer']:.2f} / {sound['0']['wer']:.2f})"
    )
    return (
        "GRID s1 audio-visual (lips + sound), held-out",
        figure,
        f"[audio_visual.md](docs/results/audio_visual.md), `{_rel(path)}`",
    )


def _multi30k() -> tuple[str, str, str]:
    beam = _read(MULTI30K)["test"]["beam"]
    figure = f"BLEU {beam['bleu']:.2f} (chrF {beam['chrf']:.2f}), beam 5, 45 minutes on 2 CPU cores"
    return (
        "Multi30k en→de test_2016_flickr",
        figure,
        f"[translation.md](docs/results/translation.md), `{_rel(MULTI30K)}`",
    )


def _service() -> tuple[str, str, str]:
    path = RESULTS / "service.json"
    latency = _read(path)["warm_latency"]
    greedy, joint = (latency[m]["p50_ms"]["median"] for m in ("ctc_greedy", "joint"))
    figure = f"p50 {greedy:.0f} ms CTC greedy, {joint:.0f} ms joint (3-s clip, `grid_s1`)"
    details = f"[speed.md](docs/results/speed.md), `{_rel(path)}`"
    return ("HTTP service latency, warm", figure, details)


def _training_speed() -> tuple[str, str, str]:
    path = RESULTS / "lipreading.json"
    results = _read(path)
    rows = results["throughput"]
    recipe = next(row for name, row in rows.items() if name.startswith("lipseq GRID recipe ("))
    equal = next(row for name, row in rows.items() if name.startswith("lipseq at LipNet's size"))
    ratio, same = recipe["ratio_to_keras_lipnet_replica"], equal["ratio_to_keras_lipnet_replica"]
    figure = (
        f"GRID recipe {ratio['median']:.2f}× ({ratio['min']:.2f}–{ratio['max']:.2f}) the Keras "
        f"LipNet replica's clips/s, lipseq at LipNet's size {same['median']:.2f}× "
        f"({results['created'][:10]}, {results['rounds']} interleaved rounds, `make bench`)"
    )
    details = f"[speed.md](docs/results/speed.md), `{_rel(path)}`"
    return ("Lip-reading training speed beside LipNet", figure, details)


def _landmarks() -> tuple[str, str, str]:
    path = RESULTS / "landmark_prep.json"
    quality = _read(path)["quality"]
    s5, lrs = quality["s5"], quality["lrs"]
    figure = (
        f"face-mesh crops: {s5['landmarks']['prepared']} of {s5['landmarks']['clips']} s5 "
        f"close-ups (Haar {s5['haar']['prepared']}), {lrs['landmarks']['prepared']} of "
        f"{lrs['landmarks']['clips']} LRS face tracks (Haar {lrs['haar']['prepared']})"
    )
    details = f"[speakers.md](docs/results/speakers.md), `{_rel(path)}`"
    return ("Mouth crops on faces the model never saw", figure, details)


def summary_rows() -> list[tuple[str, str, str]]:
    """The summary's rows, (result, figure, details), each figure read from its JSON file."""
    return [
        _grid_release(),
        _grid_frame_labels(),
        _audio_visual(),
        _multi30k(),
        _service(),
        _training_speed(),
        _landmarks(),
        ("Enrolment (adapting to a new face)", "not yet measured", "—"),
    ]


def markdown_table(rows: list[tuple[str, str, str]]) -> str:
    """The rows as README's markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    print(markdown_table(summary_rows()))


if __name__ == "__main__":
    main()
