"""A translation export in use: its decoding modes as functions of strings."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from pipelines.artifacts.exports import load_export, signature


def translate_all(translate_fn, sentences: list[str], batch_size: int = 64) -> dict:
    """Runs a batched translate function over a list of sentences, keeping the order."""
    texts, scores = [], []
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        out = translate_fn(tf.constant([sentences[i] for i in chunk]))
        texts.extend(t.decode("utf-8") for t in out["text"].numpy())
        scores.extend(float(s) for s in out["scores"].numpy())
    result_texts, result_scores = [""] * len(sentences), [0.0] * len(sentences)
    for position, index in enumerate(order):
        result_texts[index] = texts[position]
        result_scores[index] = scores[position]
    return {"text": result_texts, "scores": result_scores}


MODES = {
    "beam": "serving_default",
    "greedy": "greedy",
    "beam_lm": "beam_lm",
    "beam_candidates": "beam_candidates",
}


def load_translate_modes(export_dir: str | Path, modes=("beam",), **lm_options) -> dict:
    """mode -> function strings [B] -> outputs dict, from one load of a translation export.

    beam_lm (exports made with a language model) fuses it with `lm_options` (lm_weight,
    lm_length_bonus), else the export's configured values. modes=None: every mode the
    export has."""
    unknown = [mode for mode in modes or () if mode not in MODES]
    if unknown:
        raise ValueError(
            f"unknown translation mode {unknown[0]!r}; expected one of {', '.join(MODES)}"
        )
    loaded, _ = load_export(export_dir, task="translation")
    if modes is None:
        modes = [mode for mode, name in MODES.items() if name in loaded.signatures]
    functions = {mode: signature(loaded, export_dir, MODES[mode], **lm_options) for mode in modes}
    return {mode: (lambda strings, f=f: f(source=strings)) for mode, f in functions.items()}


def load_translate(export_dir: str | Path, mode: str = "beam"):
    """A function strings [B] -> outputs dict, backed by a translation export's signature."""
    return load_translate_modes(export_dir, (mode,))[mode]
