"""Real-data integration: a short Multi30k en->de run must learn and export German."""

import gzip
import json

import pytest

from configs import multi30k_gru_attention
from data_prep.translation import prepare_translation
from pipelines.inference.translation import load_translate, translate_all
from pipelines.serving.export import export_model
from pipelines.training.loop import train

pytestmark = [pytest.mark.slow, pytest.mark.needs_shared_data]


def _head(path, count):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [next(f) for _ in range(count)]


def test_short_multi30k_run_learns_and_exports_german(shared_data, tmp_path):
    corpus = shared_data / "multi30k"
    raw = tmp_path / "raw"
    raw.mkdir()
    for split, count in (("train", 4000), ("val", 200)):
        for lang in ("en", "de"):
            (raw / f"{split}.{lang}").write_text(
                "".join(_head(corpus / f"{split}.{lang}.gz", count)), encoding="utf-8"
            )
    config = multi30k_gru_attention.get_config("small")
    config.data.input_dir = str(raw)
    config.data.prepared_dir = str(tmp_path / "data")
    prepare_translation(config)
    train(config, tmp_path / "train")

    records = [
        json.loads(x) for x in (tmp_path / "train" / "metrics.jsonl").read_text().split("\n") if x
    ]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0] - 2.0, losses

    export_dir = export_model(tmp_path / "train", tmp_path / "export")
    sources = [line.strip() for line in _head(corpus / "test_2016_flickr.en.gz", 20)]
    outputs = translate_all(load_translate(export_dir, "beam"), sources)["text"]
    assert all(text.strip() for text in outputs), outputs
    german_words = {
        w.lower().strip(".,") for line in (raw / "train.de").read_text().split() for w in [line]
    }
    english_words = {
        w.lower().strip(".,") for line in (raw / "train.en").read_text().split() for w in [line]
    }
    produced = [w.lower().strip(".,") for text in outputs for w in text.split()]
    german_only = [w for w in produced if w in german_words and w not in english_words]
    assert len([w for w in produced if w in german_words]) >= 0.9 * len(produced)
    assert len(german_only) >= 0.3 * len(produced), outputs
