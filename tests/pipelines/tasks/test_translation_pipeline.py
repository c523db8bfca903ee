"""prepare -> train -> export -> evaluate on a small toy corpus; resume; fresh-process load."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from configs import demo_toy
from data_prep import subwords
from data_prep.records import read_manifest
from data_prep.synthetic import toy_language
from data_prep.translation import prepare_translation
from pipelines.inputs.text import make_config_dataset
from pipelines.serving.export import export_model
from pipelines.tasks import task_for
from pipelines.training.loop import train
from pipelines.training.restore import restore_model
from tests.cli import run_lipseq
from tests.fresh_process import run_without_project
from tests.pipelines.training.resume import EXACT_RESUME_FLAGS, assert_resumed_as_uninterrupted

SENTENCES = [
    "the big dog sees the cat.",
    "my three old horses do not carry the red apples across the river quickly.",
    "",
    "a word the model never saw: zyzzyva ü ß 東京.",
]


def small_config(root):
    config = demo_toy.get_config("small")
    config.data.input_dir = str(root / "raw")
    config.data.prepared_dir = str(root / "data")
    return config


def export_through_command(workdir, export_dir, *flags) -> dict:
    """`lipseq export` in a subprocess; returns the export's stored lipseq.json."""
    completed = run_lipseq("export", f"--workdir={workdir}", f"--export_dir={export_dir}", *flags)
    assert completed.returncode == 0, completed.stderr
    return json.loads((export_dir / "assets.extra" / "lipseq.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    config = small_config(root)
    toy_language.write_corpus(config.data.input_dir, num_train=2000, num_val=50, num_test=50)
    prepare_translation(config)
    summary = train(config, root / "train")
    return root, config, summary


def test_training_reduces_loss_and_writes_artifacts(trained):
    root, _, summary = trained
    workdir = root / "train"
    records = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 6
    assert losses[-1] < losses[0] - 0.5
    assert summary["final_step"] == 60
    assert any("val_bleu" in r for r in records)
    assert (workdir / "training_curves.png").stat().st_size > 0
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith("ckpt-60")
    assert tf.train.latest_checkpoint(str(workdir / "best"))
    assert list((workdir / "tensorboard").iterdir())


def test_a_resumed_run_trains_exactly_as_an_uninterrupted_one(trained, tmp_path):
    """Deterministic runs in subprocesses (op determinism is process-wide): 0 -> 50 steps, and
    0 -> 30 then a second invocation 30 -> 50 (small config: a checkpoint and a validation at
    30). The schedule follows the configured warm-up and decay, not num_train_steps."""
    root = trained[0]

    def train_to(workdir, steps):
        completed = run_lipseq(
            "train",
            "--config=configs/demo_toy.py:small",
            f"--workdir={workdir}",
            f"--config.data.prepared_dir={root / 'data'}",
            f"--config.num_train_steps={steps}",
            "--config.log_every=1",
            *EXACT_RESUME_FLAGS,
            timeout=600,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        return json.loads((workdir / "train_summary.json").read_text())

    train_to(tmp_path / "uninterrupted", 50)
    assert train_to(tmp_path / "resumed", 30)["final_step"] == 30
    summary = train_to(tmp_path / "resumed", 50)
    assert (summary["start_step"], summary["final_step"]) == (30, 50)
    assert_resumed_as_uninterrupted(tmp_path / "uninterrupted", tmp_path / "resumed", 30, 50)


def test_data_order_depends_only_on_seed_and_epoch(trained):
    root, config, _ = trained
    manifest = read_manifest(root / "data", "translation")

    def first_ids(epoch):
        dataset = make_config_dataset(config, root / "data", manifest, "train", True, epoch)
        return [x["id"].numpy().tolist() for x in dataset.take(3)]

    assert first_ids(0) == first_ids(0)
    assert first_ids(0) != first_ids(1)


def test_in_graph_tokenisation_matches_prepared_ids(trained):
    root, config, _ = trained
    manifest = read_manifest(root / "data", "translation")
    _, task, model, _ = restore_model(root / "train")
    translator = task.translator(model)
    source_spm = root / "data" / manifest["vocab"]["source"]["model"]
    processor = subwords.load_model(source_spm)
    lines = (root / "data" / "test.source.txt").read_text().splitlines()[:10]
    ids, lengths = translator.encode_source(tf.constant(lines))
    for row, line in enumerate(lines):
        expected = subwords.encode(processor, line) + [manifest["vocab"]["eos_id"]]
        assert ids[row, : lengths[row]].numpy().tolist() == expected


def test_export_can_average_the_last_checkpoints(trained, tmp_path):
    root, _, _ = trained
    from pipelines.artifacts.runs import average_checkpoints, last_checkpoints

    paths = last_checkpoints(root / "train", 2)
    assert [p.rsplit("-", 1)[1] for p in paths] == ["30", "60"]
    _, _, model, _ = restore_model(root / "train", paths[0])
    first = [v.numpy() for v in model.variables]
    _, _, model, _ = restore_model(root / "train", paths[1])
    second = [v.numpy() for v in model.variables]
    average_checkpoints(model, paths)
    for variable, a, b in zip(model.variables, first, second, strict=True):
        expected = (a + b) / 2 if np.issubdtype(a.dtype, np.floating) else b
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    with pytest.raises(Exception, match="cannot average the last 9"):
        last_checkpoints(root / "train", 9)
    info = export_through_command(root / "train", tmp_path / "averaged", "--average_last=2")
    assert info["checkpoint"] == paths


def test_export_can_ensemble_checkpoints_and_runs_of_one_vocabulary(trained, tmp_path):
    from data_prep.errors import ConfigError
    from pipelines.artifacts.runs import last_checkpoints
    from pipelines.inference.translation import load_translate_modes, translate_all
    from pipelines.training.restore import restore_ensemble

    root, _, _ = trained
    info = export_through_command(root / "train", tmp_path / "ensemble", "--ensemble_last=2")
    assert info["checkpoint"] == last_checkpoints(root / "train", 2)
    _, task, ensemble, _ = restore_ensemble(root / "train", ensemble_last=2)
    assert len(ensemble.members) == 2
    expected = task.translator(ensemble).translate_beam(tf.constant(SENTENCES))
    loaded = translate_all(load_translate_modes(tmp_path / "ensemble", ["beam"])["beam"], SENTENCES)
    assert loaded["text"] == [t.decode() for t in expected["text"].numpy()]
    single = translate_all(
        load_translate_modes(export_model(root / "train", tmp_path / "one"))["beam"], SENTENCES
    )
    assert loaded["scores"] != single["scores"]

    # Another run joins when its vocabularies are the same, and is refused when they differ.
    other = tmp_path / "other"
    shutil.copytree(root / "train", other)
    _, _, with_other, _ = restore_ensemble(root / "train", ensemble_with=(other,))
    assert len(with_other.members) == 2
    shutil.copytree(root / "data", tmp_path / "data")
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    manifest["vocab"]["target"]["sha256"] = "0" * 64
    (tmp_path / "data" / "manifest.json").write_text(json.dumps(manifest))
    config = json.loads((other / "config.json").read_text())
    config["data"]["prepared_dir"] = str(tmp_path / "data")
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="cannot ensemble .* other vocabularies"):
        restore_ensemble(root / "train", ensemble_with=(other,))
    with pytest.raises(ConfigError, match="exclude each other"):
        export_model(root / "train", tmp_path / "x", average_last=2, ensemble_last=2)


@pytest.fixture(scope="module")
def exported(trained):
    root, _, _ = trained
    # TensorFlow Serving's layout, <model>/<version>/; the other tests use it as a plain export.
    return export_model(root / "train", root / "serving", serving_version=1)


def test_export_loads_with_only_tensorflow_and_tensorflow_text(trained, exported):
    root, config, _ = trained
    assert exported == root / "serving" / "1" and (exported / "saved_model.pb").is_file()
    _, task, model, _ = restore_model(root / "train")
    translator = task.translator(model)
    expected = {
        "beam": translator.translate_beam(tf.constant(SENTENCES)),
        "greedy": translator.translate_greedy(tf.constant(SENTENCES)),
    }
    script = f"""
        import json, sys
        import tensorflow as tf
        import tensorflow_text
        model = tf.saved_model.load({str(exported)!r})
        out = {{}}
        for name, key in (("serving_default", "beam"), ("greedy", "greedy")):
            result = model.signatures[name](source=tf.constant({SENTENCES!r}))
            out[key] = {{"text": [t.decode() for t in result["text"].numpy()],
                         "scores": result["scores"].numpy().tolist(),
                         "alignment_shape": list(result["alignments"].shape)}}
        print(json.dumps(out))
        """
    fresh = run_without_project(script, root, only=["tensorflow", "tensorflow-text"])
    for mode in ("beam", "greedy"):
        assert fresh[mode]["text"] == [t.decode() for t in expected[mode]["text"].numpy()]
        np.testing.assert_allclose(fresh[mode]["scores"], expected[mode]["scores"], rtol=1e-4)
        assert fresh[mode]["alignment_shape"][0] == len(SENTENCES)


def test_evaluate_reports_bleu_and_per_sentence_scores(trained, exported):
    root, config, _ = trained
    sources = (root / "data" / "test.source.txt").read_text().splitlines()
    report = task_for(config).evaluate(exported, split="test", modes=["greedy"])
    summary = report["summary"]
    assert summary["num_sentences"] == len(sources) == len(report["sentences"])
    import sacrebleu

    hypotheses = [s["hypothesis"] for s in report["sentences"]]
    references = [s["reference"] for s in report["sentences"]]
    assert summary["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(hypotheses, [references]).score, abs=0.01
    )
    assert summary["chrf"] == pytest.approx(
        sacrebleu.corpus_chrf(hypotheses, [references]).score, abs=0.01
    )
    assert "BLEU" in summary["bleu_signature"] or "nrefs" in summary["bleu_signature"]
    lowercased = [h.lower() for h in hypotheses], [[r.lower() for r in references]]
    assert summary["bleu_lowercased"] == pytest.approx(
        sacrebleu.corpus_bleu(*lowercased).score, abs=0.01
    )
    assert "case:lc" in summary["bleu_lowercased_signature"]
    first = report["sentences"][0]
    assert set(first) >= {"source", "reference", "hypothesis", "bleu", "chrf"}


def test_evaluate_cli_on_saved_model(trained, exported, tmp_path):
    root, _, _ = trained
    output = tmp_path / "report.json"
    completed = run_lipseq(
        "evaluate",
        f"--saved_model={exported}",
        f"--prepared_dir={root / 'data'}",
        "--split=test",
        "--mode=greedy",
        f"--output={output}",
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "BLEU =" in completed.stdout and "chrF =" in completed.stdout
    assert json.loads(output.read_text())["summary"]["num_sentences"] == 50


def test_in_graph_detokenisation_matches_sentencepiece(trained):
    root, config, _ = trained
    manifest = read_manifest(root / "data", "translation")
    _, task, model, _ = restore_model(root / "train")
    translator = task.translator(model)
    target_spm = root / "data" / manifest["vocab"]["target"]["model"]
    processor = subwords.load_model(target_spm)
    rng = np.random.default_rng(0)
    rows = [rng.integers(1, processor.get_piece_size(), size=n).tolist() for n in (0, 1, 5, 17)]
    rows.append(subwords.encode(processor, "the dog sees ünknown 東京 words."))
    texts = translator.detokenize(tf.ragged.constant(rows, dtype=tf.int32)).numpy()
    for row, text in zip(rows, texts, strict=True):
        assert text.decode() == subwords.decode(processor, row)


@pytest.fixture(scope="module")
def loaded_export(exported):
    return tf.saved_model.load(str(exported))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_exported_model_takes_arbitrary_bytes(loaded_export, sources):
    for name in ("serving_default", "greedy"):
        out = loaded_export.signatures[name](source=tf.constant(sources, tf.string))
        texts = out["text"].numpy()
        assert len(texts) == len(sources)
        for text in texts:
            text.decode("utf-8")  # well-formed UTF-8
        assert np.all(np.isfinite(out["scores"].numpy()))
        assert out["alignments"].shape[0] == len(sources)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=80), min_size=1, max_size=6))
def test_text_reader_turns_arbitrary_bytes_into_its_lines_or_a_named_error(tmp_path_factory, lines):
    from data_prep.corpora.text import CorpusError, read_parallel

    root = tmp_path_factory.mktemp("bytes")
    lines = [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]
    (root / "a.src").write_bytes(b"\n".join(lines) + b"\n")
    (root / "a.tgt").write_bytes(b"\n".join(reversed(lines)) + b"\n")

    def decodes(line: bytes) -> bool:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    # Pairs are read in step: source line n, then target line n.
    first_bad = next(
        (
            (name, number)
            for number, pair in enumerate(zip(lines, reversed(lines), strict=True), 1)
            for name, line in zip(("a.src", "a.tgt"), pair, strict=True)
            if not decodes(line)
        ),
        None,
    )
    if first_bad is not None:
        # The first undecodable line is named with its file and number.
        name, number = first_bad
        with pytest.raises(CorpusError, match=rf"{name}: line {number} is not valid UTF-8"):
            list(read_parallel(root / "a.src", root / "a.tgt"))
        return
    pairs = list(read_parallel(root / "a.src", root / "a.tgt"))
    expected = [line.decode("utf-8") for line in lines]
    expected[0] = expected[0].removeprefix("\ufeff")
    assert [index for index, _, _ in pairs] == list(range(len(lines)))
    assert [source for _, source, _ in pairs] == expected
    # The target file holds the same lines in reverse order, read back exactly.
    targets = [line.decode("utf-8") for line in reversed(lines)]
    targets[0] = targets[0].removeprefix("\ufeff")
    assert [target for _, _, target in pairs] == targets


def test_the_http_service_translates_like_the_export(trained, exported):
    from fastapi.testclient import TestClient

    from pipelines.inference.translation import load_translate, translate_all
    from pipelines.serving.service import create_app

    root, _, _ = trained
    lines = (root / "data" / "test.source.txt").read_text().splitlines()[:5]
    expected = translate_all(load_translate(exported, "greedy"), lines)["text"]
    with TestClient(create_app(translation=exported)) as client:
        response = client.post("/v1/translate", json={"text": lines, "mode": "greedy"})
        assert response.status_code == 200, response.text
        assert response.json()["translations"] == expected
        one = client.post("/v1/translate", json={"text": lines[0], "mode": "greedy"}).json()
        assert one["translations"] == expected[:1]
        assert (
            client.post("/v1/translate", json={"text": lines, "mode": "sample"}).status_code == 400
        )
        assert client.post("/v1/translate", json={"text": []}).status_code == 400
        assert client.post("/v1/translate", json={"txt": "a"}).status_code == 400
        no_reader = client.post("/v1/transcribe", files={"video": ("a.mp4", b"x")})
        assert no_reader.status_code == 404
        (model,) = client.get("/v1/models").json()["models"]
        assert model["task"] == "translation" and set(model["modes"]) == {"beam", "greedy"}


def test_a_target_language_model_fuses_into_the_export_and_weight_zero_is_plain_beam(
    trained, tmp_path
):
    from configs import grid_char_lm
    from data_prep.errors import ConfigError
    from pipelines.inference.translation import load_translate_modes, translate_all

    root, _, _ = trained
    lm_config = grid_char_lm.get_config("tiny")
    with lm_config.unlocked():
        lm_config.data.source = "files"
        lm_config.data.train_files = (str(root / "data" / "train.target.txt"),)
        lm_config.data.vocabulary = str(root / "data" / "spm_target.model")
    lm_config.data.prepared_dir = str(tmp_path / "lm_data")
    task_for(lm_config).prepare()
    train(lm_config, tmp_path / "lm")
    export_dir = export_model(root / "train", tmp_path / "fused", language_model=tmp_path / "lm")
    sources = (root / "data" / "test.source.txt").read_text().splitlines()[:16]
    plain = translate_all(load_translate_modes(export_dir, ["beam"])["beam"], sources)
    unfused = translate_all(
        load_translate_modes(export_dir, ["beam_lm"], lm_weight=0.0)["beam_lm"], sources
    )
    assert unfused == plain
    fused = translate_all(
        load_translate_modes(export_dir, ["beam_lm"], lm_weight=1.0)["beam_lm"], sources
    )
    assert fused["scores"] != plain["scores"]

    lm_config.data.vocabulary = "characters"  # a model of the wrong labels; trained a step
    lm_config.num_train_steps = 1
    lm_config.data.prepared_dir = str(tmp_path / "char_data")
    task_for(lm_config).prepare()
    train(lm_config, tmp_path / "char_lm")
    with pytest.raises(ConfigError, match="target SentencePiece model"):
        export_model(root / "train", tmp_path / "bad", language_model=tmp_path / "char_lm")
