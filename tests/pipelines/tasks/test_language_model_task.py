"""The language-model task end to end on generated GRID text: prepare, train (perplexity
falls), export; the export scores raw strings exactly as training measured them, in a fresh
process with only TensorFlow."""

import json

import numpy as np
import pytest

from configs import grid_char_lm
from tests.fresh_process import run_without_project


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from pipelines.serving.export import export_model
    from pipelines.tasks import task_for
    from pipelines.training.loop import train

    root = tmp_path_factory.mktemp("lm")
    config = grid_char_lm.get_config("tiny")
    config.data.prepared_dir = str(root / "data")
    task = task_for(config)
    manifest = task.prepare()
    summary = train(config, root / "train")
    return root, task, manifest, summary, export_model(root / "train", root / "export")


def test_grid_text_is_split_without_overlap_and_encoded(trained):
    root, task, manifest, _, _ = trained
    lines = {s: (root / "data" / f"{s}.txt").read_text().splitlines() for s in ("train", "val")}
    assert len(lines["val"]) == manifest["splits"]["val"]["num_examples"] == 100
    assert all(len(line.split()) == 6 for line in lines["train"])
    ids = task._split_ids("val")
    assert [task.vocabulary.decode(row) for row in ids] == lines["val"]


def test_training_lowers_held_out_perplexity(trained):
    root, task, manifest, summary, _ = trained
    records = [json.loads(x) for x in (root / "train" / "metrics.jsonl").read_text().splitlines()]
    perplexities = [r["val_perplexity"] for r in records if "val_perplexity" in r]
    uniform = manifest["vocab"]["size"]
    # Untrained, a model is about uniform over its 42 labels; 40 steps learn the grammar's
    # spelling well enough to more than halve that.
    assert perplexities[-1] < uniform / 2 and summary["best_val_perplexity"] == min(perplexities)


def test_the_export_scores_strings_as_training_measured_them(trained):
    from pipelines.training.restore import restore_model

    root, task, _, summary, export = trained
    report = task.evaluate(export, split="val")["summary"]
    _, _, model, _ = restore_model(root / "train")
    assert report["perplexity"] == pytest.approx(summary["best_val_perplexity"], rel=1e-4)
    assert report["perplexity"] == pytest.approx(task.perplexity(model, "val")["perplexity"])
    # Characters: one token per character and one end per sentence.
    assert report["bits_per_character"] == pytest.approx(np.log2(report["perplexity"]), rel=1e-3)


def test_the_export_prefers_grammatical_text_in_a_fresh_process(trained, tmp_path):
    export = trained[4]
    script = f"""
        import json, tensorflow as tf
        score = tf.saved_model.load({str(export)!r}).signatures["serving_default"]
        texts = ["Bin blue at F two now.", "bin blue at f two now", "qxqxqxqxqxqxqxqxqxqxq"]
        out = score(text=tf.constant(texts))
        print(json.dumps({{k: v.numpy().tolist() for k, v in out.items()}}))
        """
    out = run_without_project(script, tmp_path, only=["tensorflow"])
    # Case and punctuation are normalised away; letters GRID rarely says are far less likely.
    assert out["log_prob"][0] == pytest.approx(out["log_prob"][1], abs=1e-4)
    assert out["num_tokens"][1] == len("bin blue at f two now") + 1
    assert out["log_prob"][1] > out["log_prob"][2] + 5.0


def test_a_sentencepiece_vocabulary_is_copied_beside_the_data_and_round_trips(tmp_path):
    from data_prep.language_model import vocabulary_from_manifest
    from data_prep.subwords import train_sentencepiece
    from pipelines.tasks import task_for

    text = tmp_path / "captions.txt"
    lines = [f"a dog runs on the {w} grass near people" for w in "green dry wet".split()]
    lines = [f"{line} number {i}" for i in range(40) for line in lines]
    text.write_text("\n".join(lines) + "\n")
    spm_model = tmp_path / "target.model"
    train_sentencepiece([text], spm_model, vocab_size=60)
    config = grid_char_lm.get_config("tiny")
    with config.unlocked():
        config.data.source, config.data.train_files = "files", (str(text),)
        config.data.vocabulary = str(spm_model)
        config.data.heldout_lines = 10
    config.data.prepared_dir = str(tmp_path / "data")
    manifest = task_for(config).prepare()
    assert manifest["vocab"]["kind"] == "sentencepiece"
    assert (tmp_path / "data" / manifest["vocab"]["model"]).read_bytes() == spm_model.read_bytes()
    vocabulary = vocabulary_from_manifest(tmp_path / "data", manifest)
    stored = (tmp_path / "data" / "val.txt").read_text().splitlines()
    ids = task_for(config)._split_ids("val")
    assert [vocabulary.decode(row) for row in ids] == stored
    assert set(stored) <= set(lines)
