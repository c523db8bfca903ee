"""The audio-visual task end to end on generated talking faces with their sound: prepare with
audio, train, export; every modality's signature round-trips in a fresh process with only
TensorFlow; a modality never reads the stream it leaves out."""

import json

import numpy as np
import pytest
import tensorflow as tf

from configs import grid_wlas
from pipelines.signatures.audio_visual import MODALITIES
from tests.fresh_process import run_without_project


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from data_prep.synthetic.faces import write_synthetic_corpus
    from pipelines.serving.export import export_model
    from pipelines.tasks import task_for
    from pipelines.training.loop import train

    root = tmp_path_factory.mktemp("av")
    write_synthetic_corpus(root / "raw", 40, seed=3, audio=True)
    config = grid_wlas.get_config("tiny")
    config.data.input_dir, config.data.prepared_dir = str(root / "raw"), str(root / "data")
    config.data.workers = 1
    task_for(config).prepare()
    summary = train(config, root / "train")
    export = export_model(root / "train", root / "export", checkpoint="latest")
    return root, config, summary, export


def test_training_learns_from_both_streams(trained):
    root, _, summary, _ = trained
    records = [json.loads(x) for x in (root / "train" / "metrics.jsonl").read_text().splitlines()]
    terms = [r for r in records if "loss" in r]
    assert summary["final_step"] == 12 and terms[-1]["loss"] < terms[0]["loss"]
    assert any("val_wer" in r for r in records)


def _test_clip(root):
    from pipelines.tasks.audio_visual import clip_batches_with_audio

    manifest = json.loads((root / "data" / "manifest.json").read_text())
    files = [str(root / "data" / f["path"]) for f in manifest["splits"]["test"]["files"]]
    return next(iter(clip_batches_with_audio(files, 2)))


def test_every_modality_signature_round_trips_in_a_fresh_process(trained, tmp_path):
    root, _, _, export = trained
    batch = _test_clip(root)
    loaded = tf.saved_model.load(str(export))
    arguments = {
        "video": {"frames": batch["frames"], "lengths": batch["lengths"]},
        "audio": {"audio": batch["audio"], "audio_lengths": batch["audio_lengths"]},
    }
    arguments["audio_visual"] = {**arguments["video"], **arguments["audio"]}
    expected = {}
    for modality in MODALITIES:
        for mode in ("ctc_greedy", "joint"):
            out = loaded.signatures[f"{modality}_{mode}"](**arguments[modality])
            expected[f"{modality}_{mode}"] = [t.decode() for t in out["text"].numpy()]
    np.savez(tmp_path / "batch.npz", **{k: v.numpy() for k, v in batch.items() if k != "text"})
    script = f"""
        import json
        import numpy as np, tensorflow as tf
        batch = np.load({str(tmp_path / "batch.npz")!r})
        model = tf.saved_model.load({str(export)!r})
        video = {{"frames": batch["frames"], "lengths": batch["lengths"]}}
        audio = {{"audio": batch["audio"], "audio_lengths": batch["audio_lengths"]}}
        inputs = {{"video": video, "audio": audio, "audio_visual": {{**video, **audio}}}}
        out = {{}}
        for modality, arguments in inputs.items():
            for mode in ("ctc_greedy", "joint"):
                result = model.signatures[f"{{modality}}_{{mode}}"](**arguments)
                out[f"{{modality}}_{{mode}}"] = [t.decode() for t in result["text"].numpy()]
        out["default"] = sorted(model.signatures["serving_default"].structured_input_signature[1])
        print(json.dumps(out))
        """
    fresh = run_without_project(script, tmp_path, only=["tensorflow"])
    assert fresh.pop("default") == ["audio", "audio_lengths", "frames", "lengths"]
    assert fresh == expected


def test_a_modality_never_reads_the_stream_it_leaves_out(trained):
    """Given both streams, the video reading ignores the sound and the audio reading the
    frames (the left-out stream is dropped as modality dropout taught); both read both."""
    from pipelines.training.restore import restore_model

    root, _, _, _ = trained
    _, task, model, _ = restore_model(root / "train", "latest")
    transcriber = task.transcriber(model)
    batch = _test_clip(root)
    frames, lengths = batch["frames"], batch["lengths"]
    audio, audio_lengths = batch["audio"], batch["audio_lengths"]
    noisy = audio + tf.random.stateless_normal(tf.shape(audio), [1, 2]) * 0.3
    inverted = tf.cast(255 - tf.cast(frames, tf.int32), tf.uint8)

    read = tf.function(transcriber._read)  # eager beam search would take minutes

    def scores(streams, mode, f=frames, a=audio):
        return read(streams, f, lengths, a, audio_lengths, mode)["scores"].numpy()

    both = transcriber.both  # audio first: its CTC is the one CTC modes and joint read
    for mode in ("ctc_greedy", "joint"):
        np.testing.assert_array_equal(scores(["video"], mode), scores(["video"], mode, a=noisy))
        np.testing.assert_array_equal(scores(["audio"], mode), scores(["audio"], mode, f=inverted))
        assert not np.array_equal(scores(both, mode), scores(both, mode, a=noisy))
    # The attention decoder reads both streams; CTC greedy reads the primary one only.
    assert not np.array_equal(scores(both, "joint"), scores(both, "joint", f=inverted))
    np.testing.assert_array_equal(
        scores(both, "ctc_greedy"), scores(both, "ctc_greedy", f=inverted)
    )


def test_evaluate_scores_every_modality_at_every_snr_and_draws_it(trained):
    from pipelines.evaluation import evaluate_export

    _, _, _, export = trained
    report, lines, _ = evaluate_export(
        saved_model=export, split="test", modes=["ctc_greedy"], snr=["clean", "0"]
    )
    table = report["summary"]["table"]
    assert set(table) == set(MODALITIES)
    for modality in MODALITIES:
        assert set(table[modality]["ctc_greedy"]) == {"clean", "0"}
    assert table["video"]["ctc_greedy"]["clean"] == table["video"]["ctc_greedy"]["0"]
    assert len(report["clips"]) == report["summary"]["num_clips"] > 0
    assert "audio_visual/ctc_greedy/0" in report["clips"][0]
    assert (export / "eval_test_snr.png").stat().st_size > 0
    assert any("audio_visual ctc_greedy" in line for line in lines)


def test_evaluation_noise_is_babble_of_training_clips_at_the_asked_snr(trained):
    from pipelines.tasks import task_for
    from pipelines.tasks.audio_visual import noisy_copies, read_clips_with_audio

    root, config, _, _ = trained
    task = task_for(config)
    clips = read_clips_with_audio(task.prepared_dir, task.manifest, "test")[:3]
    bank = task.babble_bank()
    train_ids = {c["id"] for c in read_clips_with_audio(task.prepared_dir, task.manifest, "train")}
    assert not train_ids & {c["id"] for c in clips}  # the bank is made of training clips only
    for snr in (10.0, 0.0, -5.0):
        for clip, noisy in zip(clips, noisy_copies(clips, str(snr), "babble", bank), strict=True):
            noise = noisy - clip["audio"]
            measured = 10 * np.log10(np.mean(clip["audio"] ** 2) / np.mean(noise**2))
            assert abs(measured - snr) < 0.05


def test_transcribe_reads_a_raw_video_with_its_sound_in_each_modality(trained):
    """A raw video through the front door: in each modality the text and score its signature
    gives on the clip as preparation stored it (frames and sound prepared one way)."""
    from pipelines.inference.lipreading import LipReadingExport, VideoTranscriber
    from pipelines.tasks.audio_visual import read_clips_with_audio

    root, _, _, export = trained
    manifest = json.loads((root / "data" / "manifest.json").read_text())
    clip = read_clips_with_audio(root / "data", manifest, "test")[0]
    (video,) = (root / "raw").rglob(f"{clip['id'].split('/')[-1]}.mp4")
    opened = LipReadingExport(export)
    stored = {
        "frames": clip["frames"][None],
        "lengths": np.array([len(clip["frames"])], np.int32),
        "audio": clip["audio"][None],
        "audio_lengths": np.array([len(clip["audio"])], np.int32),
    }
    for modality in MODALITIES:
        transcriber = VideoTranscriber(opened, mode="ctc_greedy", modality=modality)
        result = transcriber.transcribe(video)
        expected = transcriber(**stored)
        assert result["text"] == expected["text"].numpy()[0].decode(), modality
        score = float(expected["scores"].numpy()[0])
        assert result["score"] == pytest.approx(score, rel=1e-3, abs=1e-4), modality
        if modality != "audio":
            np.testing.assert_array_equal(result["crops"], clip["frames"])
    with pytest.raises(Exception, match="reads audio_visual, video, audio"):
        VideoTranscriber(opened, modality="smell")


def test_a_lip_reading_model_warm_starts_the_video_stream(trained, tmp_path):
    from configs import grid_lipnet
    from data_prep.errors import ConfigError
    from pipelines.artifacts.runs import load_initial_weights
    from pipelines.tasks import task_for
    from pipelines.training.loop import train
    from pipelines.training.restore import restore_model

    root, av_config, _, _ = trained
    video_config = grid_lipnet.get_config("tiny")
    video_config.data.prepared_dir = str(root / "data")  # the same clips, their sound unread
    video_config.num_train_steps = 2
    video_config.eval_every = 0
    train(video_config, tmp_path / "video")
    _, _, source, _ = restore_model(tmp_path / "video", "latest")

    model = task_for(av_config).build_model()
    audio_before = [w.numpy().copy() for w in model.frontend_audio.weights]
    load_initial_weights(model, tmp_path / "video", stream="video")
    for part in ("frontend", "encoder", "ctc_head"):
        into, read = getattr(model, f"{part}_video"), getattr(source, part)
        for mine, theirs in zip(into.weights, read.weights, strict=True):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    for before, after in zip(audio_before, model.frontend_audio.weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
    with pytest.raises(ConfigError, match="stream 'lips'"):
        load_initial_weights(model, tmp_path / "video", stream="lips")


def test_the_two_stage_curriculum_fits_the_video_recipes_hour():
    from configs import grid_lipnet

    video = grid_lipnet.get_config()
    lips = grid_wlas.get_config("lips_half_hour")
    both = grid_wlas.get_config("both_half_hour")
    assert lips.max_train_minutes + both.max_train_minutes == video.max_train_minutes
    # The first stage is the video recipe itself, on the records the second stage reads.
    assert lips.task == video.task and "streams" not in lips.model
    assert lips.model.to_dict() == video.model.to_dict()
    assert lips.data.prepared_dir == both.data.prepared_dir == grid_wlas.PREPARED_DIR
    assert (both.task, both.init_stream) == ("audio_visual", "video")
    assert both.init_from == "runs/grid/wlas_lips"
    # The lips-only stage keeps the video recipe's word-window guidance; the multi-stream
    # stage, whose decoder has no guidance term, does not claim it.
    assert lips.model.guided_attention_weight > 0 and lips.model.frame_label_weight > 0
    assert both.model.guided_attention_weight == both.model.frame_label_weight == 0.0


def test_a_multistream_model_says_it_ignores_guidance(caplog):
    from models.multistream import build_multistream_model

    config = grid_wlas.get_config("tiny")
    config.model.guided_attention_weight = 1.0
    config.model.frame_label_weight = 0.5
    with caplog.at_level("WARNING", logger="models.multistream"):
        build_multistream_model(config.model, 30)
    assert "guided_attention_weight=1.0 is not applied" in caplog.text
    assert "frame_label_weight is not applied" in caplog.text


def test_the_export_describes_every_signature_and_serves_the_configured_default(trained):
    """The catalogue names each signature's modality, mode and inputs in calling order, and
    decode.serving_default picks the audio-visual default (joint when unset)."""
    from pipelines.training.restore import restore_model

    _, _, _, export = trained
    info = json.loads((export / "assets.extra" / "lipseq.json").read_text())
    catalogue = info["catalogue"]
    assert catalogue["audio_visual_joint"] == {
        "modality": "audio_visual",
        "mode": "joint",
        "grammar": False,
        "fusion": False,
        "inputs": ["frames", "lengths", "audio", "audio_lengths"],
    }
    assert catalogue["audio_ctc_greedy"]["inputs"] == ["audio", "audio_lengths"]
    assert catalogue["serving_default"]["mode"] == "joint"
    root = export.parent
    _, task, model, _ = restore_model(root / "train", "latest")
    with task.config.unlocked():
        task.config.decode.serving_default = "ctc_greedy"
    _, _, chosen = task.serving_module(model)
    assert chosen["serving_default"] == "audio_visual_ctc_greedy"
    assert chosen["catalogue"]["serving_default"]["mode"] == "ctc_greedy"


def test_a_fused_language_model_reads_every_modality_of_the_audio_visual_model(trained):
    """The audio-visual transcriber passes a language model's fusion through to the search:
    with weight and bonus 0 the fused attention search reads as the unfused one."""
    from configs import grid_char_lm
    from models.language_model import build_language_model
    from pipelines.training.restore import restore_model

    root, _, _, _ = trained
    _, task, model, _ = restore_model(root / "train", "latest")
    language_model = build_language_model(
        grid_char_lm.get_config("tiny").model, task.vocabulary.size
    )
    transcriber = task.transcriber(model, language_model=language_model)
    batch = _test_clip(root)
    frames, lengths = batch["frames"], batch["lengths"]
    plain = transcriber.functions["attention"](frames, lengths)
    zero = tf.constant(0.0)
    fused = transcriber.functions["attention_lm"](frames, lengths, zero, zero)
    assert [t.numpy() for t in plain["text"]] == [t.numpy() for t in fused["text"]]
    np.testing.assert_allclose(plain["scores"], fused["scores"], atol=1e-5)
