"""Scores and reports: sacrebleu for translation, jiwer for transcription, atomic JSON."""

from __future__ import annotations

import gzip
from pathlib import Path

import jiwer
import numpy as np
import sacrebleu

from data_prep.atomic import write_json_atomic
from data_prep.corpora.text import CorpusError


def read_text_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 text file, plain or .gz, without line endings."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"text file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as error:
        raise CorpusError(f"{path}: not valid UTF-8 ({error})") from None


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    """Detokenised, cased sacrebleu BLEU."""
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def score_translations(
    sources: list[str], hypotheses: list[str], references: list[str], ids: list[str] | None = None
) -> dict:
    """Corpus BLEU/chrF plus per-sentence scores."""
    if not (len(sources) == len(hypotheses) == len(references)):
        raise ValueError(
            f"length mismatch: {len(sources)} sources, {len(hypotheses)} hypotheses, "
            f"{len(references)} references"
        )
    bleu = sacrebleu.metrics.BLEU()
    # Most published Multi30k figures score tokenised, lowercased text; 13a tokenisation of
    # lowercased output stands in for that, beside the cased detokenised main figure.
    lowercased_bleu = sacrebleu.metrics.BLEU(lowercase=True)
    chrf = sacrebleu.metrics.CHRF()
    sentence_bleu = sacrebleu.metrics.BLEU(effective_order=True)
    corpus_bleu_score = bleu.corpus_score(hypotheses, [references])
    corpus_chrf = chrf.corpus_score(hypotheses, [references])
    sentences = [
        {
            "id": ids[i] if ids else str(i),
            "source": sources[i],
            "reference": references[i],
            "hypothesis": hypotheses[i],
            "bleu": round(sentence_bleu.sentence_score(hypotheses[i], [references[i]]).score, 2),
            "chrf": round(chrf.sentence_score(hypotheses[i], [references[i]]).score, 2),
        }
        for i in range(len(sources))
    ]
    return {
        "summary": {
            "bleu": round(corpus_bleu_score.score, 2),
            "chrf": round(corpus_chrf.score, 2),
            "bleu_lowercased": round(
                lowercased_bleu.corpus_score(hypotheses, [references]).score, 2
            ),
            "bleu_signature": str(bleu.get_signature()),
            "bleu_lowercased_signature": str(lowercased_bleu.get_signature()),
            "chrf_signature": str(chrf.get_signature()),
            "num_sentences": len(sources),
        },
        "sentences": sentences,
    }


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """WER in percent (jiwer)."""
    return 100.0 * jiwer.wer(references, hypotheses)


def character_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """CER in percent (jiwer)."""
    return 100.0 * jiwer.cer(references, hypotheses)


def write_report(report: dict, path: str | Path) -> Path:
    """Writes a JSON report atomically."""
    return write_json_atomic(path, report)


def attention_in_words(
    alignment: np.ndarray, hypothesis: str, word_spans: list[tuple[int, int]], margin: int = 2
) -> float | None:
    """Share (%) of a character's attention inside the frames where its word is spoken.

    alignment [output steps, T]: step i emitted character i of `hypothesis`; word_spans:
    (start, end) frames of each reference word, end exclusive (the record's word timings).
    Characters of the k-th hypothesis word count against the k-th span widened by `margin`
    frames on each side; spaces are not counted. None when the
    hypothesis has a different number of words (no character-to-word assignment) or no
    attention weights (CTC modes).
    """
    words = hypothesis.split(" ")
    if not len(alignment) or len(words) != len(word_spans) or not hypothesis:
        return None
    inside = total = 0.0
    step = 0
    for word, (start, end) in zip(words, word_spans, strict=True):
        lo, hi = max(0, start - margin), end + margin
        for _ in word:
            if step >= len(alignment):
                break
            inside += float(alignment[step, lo:hi].sum())
            total += float(alignment[step].sum())
            step += 1
        step += 1  # the space between words
    return 100.0 * inside / total if total else None
