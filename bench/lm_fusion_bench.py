"""Shallow fusion in lip reading: WER of each search without a language model, under the hard
grammar and fused with a character language model, on a prepared split; and in translation:
BLEU of beam search with and without a target-side language model.

    python -m bench.lm_fusion_bench --export=runs/grid/export_lm_grid \
        --prepared_dir=runs/grid/data_gray80 --name=grid_char_lm
    python -m bench.lm_fusion_bench --task=translation --export=runs/multi30k/export_lm \
        --prepared_dir=runs/multi30k/data --name=lm_fusion_multi30k_de

The export comes from `lipseq export --language_model=...`. The fusion weight of each search
is chosen on the validation split (the config's eval_split; its first --val_sentences in
translation) from --weights, never on test; then the test split is scored once per search
with that weight. Writes
bench/results/<name>.json.
"""

from __future__ import annotations

from absl import app, flags

from bench.common import write_results
from pipelines.artifacts.exports import load_export, signature
from pipelines.scoring import character_error_rate, word_error_rate
from pipelines.signatures.transcriber import FUSED_MODES, transcribe_batches
from pipelines.tasks.lipreading import read_prepared_clips

FLAGS = flags.FLAGS


def _texts(loaded, export_dir, name: str, clips, **lm_options) -> list[str]:
    function = signature(loaded, export_dir, name, **lm_options)
    return transcribe_batches(
        lambda frames, lengths: function(frames=frames, lengths=lengths),
        [clip["frames"] for clip in clips],
    )


def _scores(references, hypotheses) -> dict:
    return {
        "wer": round(word_error_rate(references, hypotheses), 2),
        "cer": round(character_error_rate(references, hypotheses), 2),
    }


def run(export_dir: str, prepared_dir: str, weights: list[float], name: str, output_dir: str):
    loaded, info = load_export(export_dir, task="lipreading")
    val = read_prepared_clips(prepared_dir, info["config"]["data"]["eval_split"])
    test = read_prepared_clips(prepared_dir, "test")
    val_refs, test_refs = [c["text"] for c in val], [c["text"] for c in test]
    rows, chosen, sweep = {}, {}, {}
    for mode in FUSED_MODES:
        rows[mode] = _scores(test_refs, _texts(loaded, export_dir, mode, test))
        if f"{mode}_grammar" in loaded.signatures:
            grammar = _texts(loaded, export_dir, f"{mode}_grammar", test)
            rows[f"{mode}_grammar"] = _scores(test_refs, grammar)
        sweep[mode] = {
            str(weight): word_error_rate(
                val_refs, _texts(loaded, export_dir, f"{mode}_lm", val, lm_weight=weight)
            )
            for weight in weights
        }
        chosen[mode] = float(min(sweep[mode], key=lambda w: (sweep[mode][w], float(w))))
        fused = _texts(loaded, export_dir, f"{mode}_lm", test, lm_weight=chosen[mode])
        rows[f"{mode}_lm"] = {**_scores(test_refs, fused), "lm_weight": chosen[mode]}
    results = {
        "export": export_dir,
        "language_model": info["language_model"],
        "clips": {"val": len(val), "test": len(test)},
        "val_wer_by_weight": sweep,
        "test": rows,
    }
    return write_results(name, results, output_dir)


def run_translation(
    export_dir: str, prepared_dir: str, weights: list[float], name: str, output_dir: str, val_size
):
    from pipelines.inference.translation import MODES, translate_all
    from pipelines.scoring import read_text_lines, score_translations

    loaded, info = load_export(export_dir, task="translation")
    data = info["config"]["data"]

    def split(name):
        return [
            read_text_lines(f"{prepared_dir}/{name}.{side}.txt") for side in ("source", "target")
        ]

    (val_sources, val_refs), (sources, refs) = split(data["eval_split"]), split(data["test_split"])
    val_sources, val_refs = val_sources[:val_size], val_refs[:val_size]

    def translate(sentences, mode, **lm_options):
        function = signature(loaded, export_dir, MODES[mode], **lm_options)
        return translate_all(lambda strings: function(source=strings), sentences)["text"]

    def scores(hypotheses, sources=sources, refs=refs):
        summary = score_translations(sources, hypotheses, refs)["summary"]
        return {key: summary[key] for key in ("bleu", "chrf", "bleu_lowercased")}

    sweep = {
        str(weight): scores(
            translate(val_sources, "beam_lm", lm_weight=weight), val_sources, val_refs
        )["bleu"]
        for weight in [0.0, *weights]
    }
    chosen = float(max(sweep, key=lambda w: (sweep[w], -float(w))))
    rows = {
        "beam": scores(translate(sources, "beam")),
        "beam_lm": {**scores(translate(sources, "beam_lm", lm_weight=chosen)), "lm_weight": chosen},
    }
    results = {
        "export": export_dir,
        "language_model": info["language_model"],
        "sentences": {"val": len(val_sources), "test": len(sources)},
        "val_bleu_by_weight": sweep,
        "test": rows,
    }
    return write_results(name, results, output_dir)


def define_flags() -> None:
    flags.DEFINE_enum("task", "lipreading", ["lipreading", "translation"], "The export's task.")
    flags.DEFINE_integer("val_sentences", 500, "Translation: validation sentences per weight.")
    flags.DEFINE_string("export", None, "A lip-reading export made with --language_model.")
    flags.DEFINE_string("prepared_dir", "runs/grid/data_gray80", "Prepared clips (val, test).")
    flags.DEFINE_list("weights", ["0.1", "0.2", "0.3", "0.5", "0.8"], "Fusion weights to try.")
    flags.DEFINE_string("name", "lm_fusion", "Results file name (bench/results/<name>.json).")
    flags.DEFINE_string("output_dir", "bench/results", "Where the JSON goes.")
    flags.mark_flag_as_required("export")


def main(argv: list[str]) -> None:
    del argv
    weights = [float(w) for w in FLAGS.weights]
    if FLAGS.task == "translation":
        print(
            run_translation(
                FLAGS.export,
                FLAGS.prepared_dir,
                weights,
                FLAGS.name,
                FLAGS.output_dir,
                FLAGS.val_sentences,
            )
        )
        return
    print(run(FLAGS.export, FLAGS.prepared_dir, weights, FLAGS.name, FLAGS.output_dir))


if __name__ == "__main__":
    define_flags()
    app.run(main)
