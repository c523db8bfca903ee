"""The shipped Multi30k en->de model: it resolves by name, says what it translates, translates
fixed sentences in a fresh process with nothing but TensorFlow and tensorflow-text as it did
when it was released, and its recorded test translations score the BLEU its RESULTS.md gives.
"""

import json
import re
from pathlib import Path

import pytest
import sacrebleu

from pipelines.artifacts.exports import (
    RELEASES_DIR,
    read_export_info,
    released_models,
    resolve_export,
)
from pipelines.scoring import read_text_lines
from tests.fresh_process import run_without_project

NAME = "multi30k_en_de"
RELEASE = RELEASES_DIR / NAME
# Made from the release when it was shipped: the serving default (beam 5) on fixed sentences
# and on all of test_2016_flickr (the hypotheses of `lipseq evaluate`).
RECORDING = Path(__file__).with_name("multi30k_en_de_hypotheses.json")


@pytest.fixture(scope="module")
def recording():
    return json.loads(RECORDING.read_text(encoding="utf-8"))


def test_the_release_resolves_by_name_and_is_an_english_to_german_translator():
    assert NAME in released_models()
    assert resolve_export(NAME) == RELEASE / "export"
    info = read_export_info(NAME, task="translation")
    assert (info["config"]["data"]["source_lang"], info["config"]["data"]["target_lang"]) == (
        "en",
        "de",
    )
    assert info["requires_modules"] == ["tensorflow_text"]


def test_the_release_translates_as_recorded_with_nothing_but_tensorflow(recording, tmp_path):
    """The fixed sentences through the serving default of the export loaded by TensorFlow and
    tensorflow-text alone: the recorded text, and the score to float32 search precision."""
    fixed = recording["fixed"]
    sources = [sentence["source"] for sentence in fixed]
    script = f"""
        import json
        import tensorflow as tf, tensorflow_text
        model = tf.saved_model.load({str(RELEASE / "export")!r})
        out = model.signatures["serving_default"](source=tf.constant({sources!r}))
        texts, scores = out["text"].numpy(), out["scores"].numpy()
        print(json.dumps([[t.decode(), float(s)] for t, s in zip(texts, scores)]))
        """
    fresh = run_without_project(script, tmp_path, only=["tensorflow", "tensorflow-text"])
    assert [text for text, _ in fresh] == [s["text"] for s in fixed]
    assert [score for _, score in fresh] == pytest.approx(
        [s["score"] for s in fixed], rel=1e-3, abs=1e-4
    )


def test_the_recorded_fixed_sentences_are_among_the_test_translations(recording):
    """The fixed sentences are the first of test_2016_flickr, translated one batch apart."""
    for index, sentence in enumerate(recording["fixed"][: recording["fixed_from_test"]]):
        assert recording["test_2016_flickr"][index] == sentence["text"]


def test_the_release_reports_what_its_recorded_test_translations_score(recording):
    summary = json.loads((RELEASE / "eval_test_summary.json").read_text())
    results = (RELEASE / "RESULTS.md").read_text(encoding="utf-8")
    # RESULTS.md quotes the summary's figures, in its results table.
    assert re.search(rf"\*\*{summary['bleu']:.2f}\*\*.*\*\*{summary['chrf']:.2f}\*\*", results)
    assert len(recording["test_2016_flickr"]) == summary["num_sentences"] == 1000


@pytest.mark.needs_shared_data
def test_the_recorded_test_translations_score_the_released_bleu(recording, shared_data):
    references = read_text_lines(shared_data / "multi30k" / "test_2016_flickr.de.gz")
    hypotheses = recording["test_2016_flickr"]
    summary = json.loads((RELEASE / "eval_test_summary.json").read_text())
    bleu = sacrebleu.metrics.BLEU().corpus_score(hypotheses, [references])
    chrf = sacrebleu.metrics.CHRF().corpus_score(hypotheses, [references])
    assert (round(bleu.score, 2), round(chrf.score, 2)) == (summary["bleu"], summary["chrf"])
