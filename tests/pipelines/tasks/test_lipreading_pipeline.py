"""Synthetic talking faces: prepare -> train (tiny) -> export -> transcribe, every mode."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from configs import demo_video
from data_prep.lipreading import prepare_lipreading_corpus
from data_prep.synthetic.faces import write_synthetic_corpus
from pipelines.serving.export import export_model
from pipelines.signatures.transcriber import Transcriber, transcribe_batches
from pipelines.tasks.lipreading import read_prepared_clips
from pipelines.training.loop import train
from pipelines.training.restore import restore_model
from tests.cli import run_lipseq
from tests.fresh_process import run_without_project


def tiny_config(root):
    config = demo_video.get_config("tiny")
    config.data.input_dir = str(root / "raw")
    config.data.prepared_dir = str(root / "prep")
    config.data.preset = "lipnet"
    config.data.clips_per_shard = 4
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("lip")
    write_synthetic_corpus(root / "raw", 10, seed=21)
    config = tiny_config(root)
    prepare_lipreading_corpus(
        config.data, split_of=lambda spec: "validation" if spec.id < "c" else "train"
    )
    summary = train(config, root / "train")
    return root, config, summary


def test_lipreading_training_runs_and_validates_with_wer(trained):
    root, _, summary = trained
    records = [
        json.loads(x) for x in (root / "train" / "metrics.jsonl").read_text().split("\n") if x
    ]
    assert summary["final_step"] == 12
    assert any("val_wer" in r for r in records)
    assert tf.train.latest_checkpoint(str(root / "train" / "best"))


@pytest.fixture(scope="module")
def exported(trained):
    root, _, _ = trained
    return export_model(root / "train", root / "export")


def _clips(root, count=3):
    return [clip["frames"] for clip in read_prepared_clips(root / "prep", "train", count)]


def test_every_decoding_mode_is_exported_and_matches_in_process(trained, exported):
    root, config, _ = trained
    _, task, model, _ = restore_model(root / "train")
    manifest = task.manifest
    clips = _clips(root)
    np.save(root / "clips.npy", np.array(clips, dtype=object), allow_pickle=True)
    expected = {}
    for grammar in (False, True):
        transcriber = Transcriber(model, config, manifest["normalisation"], grammar=grammar)
        for mode, function in transcriber.functions.items():
            expected[mode + ("_grammar" if grammar else "")] = transcribe_batches(function, clips)
    script = f"""
        import json, sys
        import numpy as np, tensorflow as tf
        model = tf.saved_model.load({str(exported)!r})
        clips = np.load({str(root / "clips.npy")!r}, allow_pickle=True)
        longest = max(len(c) for c in clips)
        frames = np.zeros((len(clips), longest) + clips[0].shape[1:], np.uint8)
        for i, c in enumerate(clips):
            frames[i, :len(c)] = c
        lengths = tf.constant([len(c) for c in clips], tf.int32)
        out = {{name: [t.decode() for t in model.signatures[name](
            frames=tf.constant(frames), lengths=lengths)["text"].numpy()]
            for name in model.signatures}}
        print(json.dumps(out))
    """
    fresh = run_without_project(script, root)
    assert set(expected) | {"serving_default"} == set(fresh)
    for name, texts in expected.items():
        assert fresh[name] == texts, name
    from data_prep.characters import CharVocabulary, word_grammar_automaton
    from data_prep.corpora.grid import GRID_GRAMMAR

    table, final = word_grammar_automaton(list(GRID_GRAMMAR.values()), CharVocabulary())
    grammar_texts = [(n, text) for n in fresh if n.endswith("_grammar") for text in fresh[n]]
    # The attention searches always end a sentence; a CTC search may find none (empty text).
    sentences = [(n, text) for n, text in grammar_texts if text or not n.startswith("ctc")]
    assert len(sentences) >= 2 * len(clips), grammar_texts
    for name, text in sentences:
        state = 0
        for label in CharVocabulary().encode(text):
            state = table[state, label]
            assert state >= 0, (name, text)
        assert final[state], (name, text)


def test_transcribe_cli_on_a_raw_video(trained, exported, tmp_path):
    root, _, _ = trained
    video = sorted((root / "raw" / "s1" / "video").iterdir())[0]
    png = tmp_path / "alignment.png"
    completed = run_lipseq(
        "transcribe",
        f"--video={video}",
        f"--model={exported}",
        "--mode=attention",
        f"--alignment_png={png}",
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "seconds" in completed.stdout
    assert png.stat().st_size > 0


def test_transcribe_cli_on_many_videos_writes_json_lines_and_subtitles(trained, exported, tmp_path):
    import shutil

    root, _, _ = trained
    videos = sorted((root / "raw" / "s1" / "video").iterdir())[:3]
    folder = tmp_path / "videos"
    folder.mkdir()
    for video in videos[:2]:
        shutil.copy(video, folder)
    (folder / "broken.mp4").write_bytes(b"no video in here")
    manifest = tmp_path / "more.txt"
    manifest.write_text(f"{videos[2]}\n")
    output = tmp_path / "out" / "transcripts.jsonl"
    completed = run_lipseq(
        "transcribe",
        f"--inputs={folder},{manifest}",
        f"--model={exported}",
        "--mode=attention",
        f"--output={output}",
        "--subtitles=srt",
        "--workers=2",
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    records = [json.loads(line) for line in output.read_text().splitlines()]
    # The folder's videos sorted by name, then the manifest's; the broken one skipped.
    folder_names = sorted([video.name for video in videos[:2]] + ["broken.mp4"])
    assert [Path(r["video"]).name for r in records] == [*folder_names, videos[2].name]
    broken = next(r for r in records if r["video"].endswith("broken.mp4"))
    assert broken["skipped"] == "unreadable" and "text" not in broken
    # Each video reads as the in-process transcriber reads it, its words timed alike.
    from pipelines.inference.lipreading import VideoTranscriber
    from pipelines.inference.words import subtitles, timed_words

    transcriber = VideoTranscriber(exported, "attention")
    for record in (r for r in records if r is not broken):
        expected = transcriber.transcribe(record["video"])
        assert record["text"] == expected["text"], record["video"]
        assert record["score"] == pytest.approx(expected["score"], rel=1e-3, abs=1e-4)
        crops = expected["crops"]
        assert record["num_frames"] == len(crops) and 0 <= record["roi_confidence"]["min"] <= 1
        alignment, fps = expected["alignments"], record["fps"]
        words = timed_words(transcriber.export, expected["text"], alignment, crops, fps)
        assert record["words"] == words
        if words:
            assert Path(record["subtitles"]).read_text() == subtitles(words, "srt")
        else:
            assert "subtitles" not in record


def test_word_times_and_subtitles_known_answers():
    from pipelines.inference.words import subtitles, word_times

    alignment = np.zeros((6, 50), np.float32)  # "ab cd" + eos at 25 fps
    alignment[0, 10] = alignment[1, 14] = alignment[2, 20] = 1.0
    alignment[3, 30] = alignment[4, 34] = alignment[5, 49] = 1.0
    words = word_times("ab cd", alignment, 25.0, 50)
    assert words == [
        {"word": "ab", "start": 0.4, "end": 0.6},
        {"word": "cd", "start": 1.2, "end": 1.4},
    ]
    assert word_times("ab", np.zeros((0, 50)), 25.0, 50) is None
    srt = subtitles(words, "srt", words_per_cue=1)
    assert srt == "1\n00:00:00,400 --> 00:00:00,600\nab\n\n2\n00:00:01,200 --> 00:00:01,400\ncd\n"
    vtt = subtitles(words, "vtt")
    assert vtt == "WEBVTT\n\n00:00:00.400 --> 00:00:01.400\nab cd\n"


def test_expand_inputs_reads_folders_globs_and_manifests(tmp_path):
    from pipelines.serving.batch import NoVideosError, expand_inputs

    (tmp_path / "a").mkdir()
    for name in ("a/x.mp4", "a/y.MOV", "a/notes.txt", "z.mpg"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "list.csv").write_text("video,text\nz.mpg,hello\n")
    (tmp_path / "list.jsonl").write_text('{"video": "a/x.mp4"}\n')
    found = expand_inputs(
        [str(tmp_path / "a"), str(tmp_path / "*.mpg"), str(tmp_path / "list.csv")]
    )
    assert found == [tmp_path / "a" / "x.mp4", tmp_path / "a" / "y.MOV", tmp_path / "z.mpg"]
    assert expand_inputs([str(tmp_path / "list.jsonl")]) == [tmp_path / "a" / "x.mp4"]
    with pytest.raises(NoVideosError, match="no video files"):
        expand_inputs([str(tmp_path / "*.avi")])
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(NoVideosError, match="line 1"):
        expand_inputs([str(tmp_path / "bad.jsonl")])


def test_evaluate_reports_wer_and_cer_for_every_mode(trained, exported, tmp_path):
    root, _, _ = trained
    output = tmp_path / "eval.json"
    completed = run_lipseq(
        "evaluate",
        f"--saved_model={exported}",
        f"--prepared_dir={root / 'prep'}",
        "--split=validation",
        f"--output={output}",
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(output.read_text())
    modes = report["summary"]["modes"]
    assert {"ctc_greedy", "ctc_beam", "attention", "joint", "joint_grammar"} <= set(modes)
    # The summary is the corpus score of the per-clip hypotheses it reports.
    import jiwer

    references = [clip["reference"] for clip in report["clips"]]
    for mode, scores in modes.items():
        hypotheses = [clip[mode]["hypothesis"] for clip in report["clips"]]
        assert scores["wer"] == pytest.approx(100 * jiwer.wer(references, hypotheses), abs=0.01)
        assert scores["cer"] == pytest.approx(100 * jiwer.cer(references, hypotheses), abs=0.01)
    assert len(report["clips"]) == report["summary"]["num_clips"] > 0
    assert "WER =" in completed.stdout
    # The synthetic clips carry word timings: attention modes report how much of their
    # attention falls on the spoken words; CTC modes have no attention to measure. The
    # grammar-restricted ones read six words, as many as each reference: every clip counts.
    for mode in ("ctc_greedy", "ctc_beam", "ctc_greedy_grammar", "ctc_beam_grammar"):
        assert "attention_in_words" not in modes[mode]
    for mode in ("attention_grammar", "joint_grammar"):
        measured = modes[mode]["attention_in_words"]
        assert measured["clips"] == len(report["clips"]) and 0 < measured["mean"] <= 100


def test_attention_in_words_known_answers():
    from pipelines.scoring import attention_in_words

    spans = [(0, 2), (6, 8)]  # "ab" spoken at frames 0-1, "c" at frames 6-7 of 10
    on_words = np.zeros((5, 10), np.float32)  # steps: a, b, space, c, eos
    on_words[0, 0] = on_words[1, 1] = on_words[2, 4] = on_words[3, 7] = on_words[4, 9] = 1.0
    assert attention_in_words(on_words, "ab c", spans, margin=0) == pytest.approx(100.0)
    at_the_end = np.zeros((5, 10), np.float32)
    at_the_end[:, 9] = 1.0  # every character reads the last frame
    assert attention_in_words(at_the_end, "ab c", spans, margin=0) == pytest.approx(0.0)
    spread = np.full((5, 10), 0.1, np.float32)  # uniform: 2 of 10 frames per word
    assert attention_in_words(spread, "ab c", spans, margin=0) == pytest.approx(20.0)
    # margin 1: "ab" reads frames 0-2 (0.3 each), "c" frames 5-8 (0.4): 1.0 of 3.0
    assert attention_in_words(spread, "ab c", spans, margin=1) == pytest.approx(100 / 3)
    # No character-to-word assignment, or no attention weights: nothing to measure.
    assert attention_in_words(spread, "abc", spans) is None
    assert attention_in_words(np.zeros((0, 10)), "ab c", spans) is None


def _raw_video_corpus(root, tmp_path):
    """Three clips with alignments, one whose transcript is only its GRID id, one broken."""
    import shutil

    corpus = tmp_path / "videos" / "s1"
    (corpus / "video").mkdir(parents=True)
    (corpus / "align").mkdir()
    videos = sorted((root / "raw" / "s1" / "video").iterdir())
    for video in videos[:3]:
        shutil.copy(video, corpus / "video")
        shutil.copy(root / "raw" / "s1" / "align" / f"{video.stem}.align", corpus / "align")
    shutil.copy(videos[3], corpus / "video")
    (corpus / "video" / "bgaa1n.mp4").write_bytes(b"these bytes are no video")
    return tmp_path / "videos", videos[3].stem


def test_evaluate_on_raw_videos_uses_the_exports_preparation(trained, exported, tmp_path):
    from data_prep.corpora.grid import GRID_GRAMMAR, grid_id_to_words
    from pipelines.tasks import task_for

    root, config, _ = trained
    videos, id_only = _raw_video_corpus(root, tmp_path)
    report = task_for(config).evaluate(exported, inputs=str(videos), modes=["attention"])
    summary = report["summary"]
    assert (summary["num_videos"], summary["num_clips"], summary["num_skipped"]) == (5, 4, 1)
    assert report["skipped"][0]["id"] == "bgaa1n" and report["skipped"][0]["reason"]
    references = {clip["id"]: clip["reference"] for clip in report["clips"]}
    assert references[id_only] == " ".join(grid_id_to_words(id_only))
    slots = summary["modes"]["attention"]["slot_accuracy"]
    assert set(slots) == set(GRID_GRAMMAR) and all(0 <= v <= 100 for v in slots.values())
    # The same clips from the prepared splits decode to the same text: one preparation.
    from pipelines.tasks.lipreading import evaluate_lipreading

    prepared = [
        c
        for split in ("train", "validation")
        for c in read_prepared_clips(root / "prep", split)
        if c["id"] in references
    ]
    expected = evaluate_lipreading(exported, prepared, ["attention"])["clips"]
    hypotheses = {c["id"]: c["attention"]["hypothesis"] for c in report["clips"]}
    assert {c["id"]: c["attention"]["hypothesis"] for c in expected} == hypotheses


def test_evaluate_cli_on_raw_videos(trained, exported, tmp_path):
    root, _, _ = trained
    videos, _ = _raw_video_corpus(root, tmp_path)
    output = tmp_path / "eval.json"
    completed = run_lipseq(
        "evaluate",
        f"--saved_model={exported}",
        f"--videos={videos}",
        "--modes=ctc_greedy,joint_grammar",
        f"--output={output}",
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "skipped 1 of 5 videos" in completed.stdout
    modes = json.loads(output.read_text())["summary"]["modes"]
    assert set(modes) == {"ctc_greedy", "joint_grammar"}


def test_a_character_language_model_is_fused_into_the_export(trained, tmp_path):
    from configs import grid_char_lm
    from pipelines.artifacts.exports import load_export, signature
    from pipelines.tasks import task_for

    root, _, _ = trained
    lm_config = grid_char_lm.get_config("tiny")
    lm_config.data.prepared_dir = str(tmp_path / "lm_data")
    lm_config.num_train_steps, lm_config.eval_every = 5, 0
    task_for(lm_config).prepare()
    train(lm_config, tmp_path / "lm")
    export = export_model(root / "train", tmp_path / "fused", language_model=tmp_path / "lm")
    loaded, info = load_export(export)
    assert {"ctc_beam_lm", "attention_lm", "joint_lm"} <= set(loaded.signatures)
    assert info["language_model"]["lm_weight"] == lm_config.decode.lm_weight
    assert info["language_model"]["source"].startswith(str(tmp_path / "lm"))
    clips = _clips(root)
    frames = np.zeros((len(clips), max(map(len, clips)), *clips[0].shape[1:]), np.uint8)
    for row, clip in enumerate(clips):
        frames[row, : len(clip)] = clip
    inputs = {"frames": frames, "lengths": tf.constant([len(c) for c in clips], tf.int32)}
    for mode in ("ctc_beam", "attention", "joint"):
        plain = signature(loaded, export, mode)(**inputs)
        unfused = signature(loaded, export, f"{mode}_lm", lm_weight=0.0, lm_length_bonus=0.0)
        zero = unfused(**inputs)
        # Weight 0 is exactly the search without a language model; the default weight is not.
        np.testing.assert_array_equal(plain["text"].numpy(), zero["text"].numpy())
        np.testing.assert_array_equal(plain["scores"].numpy(), zero["scores"].numpy())
        fused = signature(loaded, export, f"{mode}_lm")(**inputs)
        assert not np.array_equal(plain["scores"].numpy(), fused["scores"].numpy()), mode


@pytest.mark.parametrize("prior", ["diagonal", "words"])
def test_the_training_step_sees_what_guided_attention_reads(trained, prior):
    # The loop keeps only the task's batch_signature keys: a guidance input left out of it
    # would silently fall back (the diagonal to the whole clip) or fail.
    from pipelines.tasks import task_for

    _, config, _ = trained
    config = config.copy_and_resolve_references()
    config.model.guided_attention_weight = 1.0
    config.model.guided_attention_prior = prior
    task = task_for(config)
    model = task.build_model()
    batch = next(iter(task.train_dataset(epoch=0)))
    kept = {key: batch[key] for key in task.batch_signature()}
    outputs = model(kept, training=False)
    guidance = {t.name: t for t in model.loss_terms(kept, outputs)}["guided_attention"]
    assert float(guidance.count) > 0
    if prior == "diagonal":
        without_span = {k: v for k, v in kept.items() if k != "speech_span"}
        whole_clip = {t.name: t for t in model.loss_terms(without_span, outputs)}
        # The synthetic speakers pause around their words, so the span moves the diagonal.
        assert float(whole_clip["guided_attention"].total) != pytest.approx(
            float(guidance.total), rel=1e-4
        )


def test_the_config_names_the_exports_default_mode(trained):
    from pipelines.tasks import task_for

    root, config, _ = trained
    _, task, model, _ = restore_model(root / "train", "latest")
    _, signatures, info = task.serving_module(model)
    assert info["serving_default"] == "joint"
    assert signatures["serving_default"] is signatures["joint"]
    config = config.copy_and_resolve_references()
    config.decode.serving_default = "attention"
    _, signatures, info = task_for(config).serving_module(model)
    assert info["serving_default"] == "attention"
    assert signatures["serving_default"] is signatures["attention"]
    config.decode.serving_default = "beam"
    with pytest.raises(Exception, match="serving_default 'beam' is not a mode"):
        task_for(config).serving_module(model)


def _joint_loss(model, batch) -> float:
    outputs = model(batch, training=False)
    terms = model.loss_terms(batch, outputs, 0.0)
    return float(tf.add_n([t.weight * t.total / tf.maximum(t.count, 1.0) for t in terms]))


def test_a_bfloat16_model_computes_the_float32_loss_closely(trained):
    from pipelines.training.precision import keras_policy

    root, _, _ = trained
    _, task, model, path = restore_model(root / "train")
    with keras_policy("mixed_bfloat16"):
        low = task.build_model()
        tf.train.Checkpoint(model=low).read(path).expect_partial()
    batch = next(iter(task.train_dataset(0)))
    batch = {key: batch[key] for key in task.batch_signature()}
    expected, actual = _joint_loss(model, batch), _joint_loss(low, batch)
    assert any(layer.compute_dtype == "bfloat16" for layer in low._flatten_layers())
    floating = {tf.as_dtype(v.dtype) for v in low.variables if tf.as_dtype(v.dtype).is_floating}
    assert floating == {tf.float32}
    assert actual == pytest.approx(expected, rel=0.03)


def test_bfloat16_training_keeps_float32_weights_that_export(trained, tmp_path):
    import keras

    root, config, _ = trained
    config = config.copy_and_resolve_references()
    config.mixed_precision = "bfloat16"
    config.num_train_steps = 4
    summary = train(config, tmp_path / "train")
    assert summary["compute_dtype"] == "bfloat16" and summary["final_step"] == 4
    assert keras.config.dtype_policy().name == "float32"  # restored after training
    path = tf.train.latest_checkpoint(str(tmp_path / "train" / "checkpoints"))
    weights = [name for name, _ in tf.train.list_variables(path) if name.startswith("model/")]
    values = [tf.train.load_variable(path, name) for name in weights]
    floating = [value.dtype for value in values if np.issubdtype(value.dtype, np.floating)]
    assert floating and set(floating) == {np.dtype(np.float32)}
    lines = (tmp_path / "train" / "metrics.jsonl").read_text().split("\n")
    records = [json.loads(line) for line in lines if line]
    assert all(np.isfinite(r["loss"]) for r in records if "loss" in r)
    export = tf.saved_model.load(str(export_model(tmp_path / "train", tmp_path / "export")))
    clips = _clips(root, 2)
    frames = np.zeros((2, max(len(c) for c in clips), *clips[0].shape[1:]), np.uint8)
    for i, clip in enumerate(clips):
        frames[i, : len(clip)] = clip
    out = export.signatures["ctc_greedy"](
        frames=tf.constant(frames), lengths=tf.constant([len(c) for c in clips], tf.int32)
    )
    assert out["text"].dtype == tf.string and out["text"].shape == (2,)


def test_training_refuses_a_config_prepared_otherwise(trained):
    """A config whose preparation settings differ from the prepared data's manifest is
    refused before training, naming the setting; what only changes handling passes."""
    from data_prep.errors import ConfigError
    from pipelines.tasks import task_for

    root, config, _ = trained
    other = copy.deepcopy(config)
    with other.unlocked():
        other.data.detector = "facetrack"
        other.data.detect_every = 3
    expected = r"detect_every=3 \(prepared with \d+\); detector='facetrack'"
    with pytest.raises(ConfigError, match=expected):
        task_for(other).check_prepared()
    handling = copy.deepcopy(config)
    with handling.unlocked():
        handling.data.strict, handling.data.clips_per_shard = True, 7
    task_for(handling).check_prepared()


def test_the_export_carries_the_preparation_settings_it_was_trained_on(trained, exported):
    """The front door prepares raw videos with the prepared data's settings, stored in the
    export, whatever the stored config says."""
    from pipelines.inference.lipreading import LipReadingExport

    root, _, _ = trained
    manifest = json.loads((root / "prep" / "manifest.json").read_text())
    info_path = exported / "assets.extra" / "lipseq.json"
    info = json.loads(info_path.read_text())
    assert info["prep"] == manifest["settings"]
    info["config"]["data"]["detector"] = "facetrack"  # a config that disagrees: prep wins
    info_path.write_text(json.dumps(info))
    try:
        assert LipReadingExport(exported).settings.detector == manifest["settings"]["detector"]
    finally:
        info["config"]["data"]["detector"] = manifest["settings"]["detector"]
        info_path.write_text(json.dumps(info))


def test_enrolment_adapts_the_export_to_new_clips_and_scores_the_held_back_ones(exported, tmp_path):
    """`lipseq enrol`'s path on a small export: the speaker's clips prepared with the
    export's settings, a few steps from its weights, a new export any verb reads, and the
    held-back clips' WER before and after."""
    from pipelines.enrolment import EnrolmentPlan, enrol
    from pipelines.inference.lipreading import LipReadingExport

    write_synthetic_corpus(tmp_path / "speaker", 5, seed=77)
    plan = EnrolmentPlan(minutes=2.0, max_steps=4, eval_every=2, batch_size=2)
    result = enrol(exported, tmp_path / "speaker", tmp_path / "enrolled", plan)
    assert result["clips"] == {"train": 4, "validation": 1} and result["steps"] == 4
    assert set(result["held_back_wer"]) == {"mode", "clips", "before", "after"}
    assert result["held_back_wer"]["clips"] == 1
    base, enrolled = LipReadingExport(exported), LipReadingExport(result["export"])
    assert enrolled.settings == base.settings and enrolled.catalogue == base.catalogue
    base_variables = str(Path(exported) / "variables" / "variables")
    before = tf.train.load_checkpoint(base_variables)
    after = tf.train.load_checkpoint(str(Path(result["export"]) / "variables" / "variables"))
    weights = [n for n, _ in tf.train.list_variables(base_variables)]
    weights = [n for n in weights if "decoder" in n and n.endswith("VARIABLE_VALUE")]
    assert weights and any(
        not np.array_equal(before.get_tensor(n), after.get_tensor(n)) for n in weights
    )
    assert json.loads((tmp_path / "enrolled" / "enrolment.json").read_text()) == result
