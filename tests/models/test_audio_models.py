"""The log-mel audio front-end: rate, lengths, padding, filterbank and SpecAugment."""

import numpy as np
import pytest
import tensorflow as tf

from models.frontends import LogMelFrontEnd


def _tone(seconds: float, frequency: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.fixture(scope="module")
def frontend():
    tf.keras.utils.set_random_seed(0)
    layer = LogMelFrontEnd(output_dim=32, filters=8)
    layer.build((None, None))
    return layer


def test_three_seconds_of_audio_become_75_steps_at_the_video_rate(frontend):
    waveform = np.zeros((2, 48000), np.float32)
    waveform[0] = _tone(3.0, 440.0)
    waveform[1, :24000] = _tone(1.5, 440.0)
    features, lengths = frontend(tf.constant(waveform), tf.constant([48000, 24000]))
    assert features.shape == (2, 75, 32)
    assert lengths.numpy().tolist() == [75, 38]
    assert not np.any(features.numpy()[1, 38:])  # padding steps are zero


def test_padding_never_changes_a_clips_features(frontend):
    clip = _tone(1.2, 700.0) + 0.01 * np.random.default_rng(0).normal(size=19200).astype(np.float32)
    alone, alone_lengths = frontend(tf.constant(clip[None]), tf.constant([len(clip)]))
    padded = np.zeros((1, 40000), np.float32)
    padded[0, : len(clip)] = clip
    padded[0, len(clip) :] = 0.3  # garbage beyond the length must not leak in
    batched, batched_lengths = frontend(tf.constant(padded), tf.constant([len(clip)]))
    assert int(alone_lengths[0]) == int(batched_lengths[0]) == 30
    np.testing.assert_allclose(batched.numpy()[0, :30], alone.numpy()[0], atol=1e-4)


def test_a_tone_lights_the_mel_bin_of_its_frequency(frontend):
    log_mel, frames = frontend.log_mel(tf.constant(_tone(1.0, 1000.0)[None]), tf.constant([16000]))
    assert int(frames[0]) == 100
    loudest = int(np.argmax(log_mel.numpy()[0, 10:90].mean(axis=0)))
    # The bin whose filter peaks nearest 1 kHz (filters are triangles on the mel scale).
    weights = frontend.mel_matrix.numpy()
    hertz = np.linspace(0, 8000, weights.shape[0])
    centres = hertz[np.argmax(weights, axis=0)]
    assert abs(centres[loudest] - 1000.0) < 60.0


def test_spec_augment_masks_in_training_only(frontend):
    waveform = tf.constant(np.stack([_tone(2.0, 300.0), _tone(2.0, 3000.0)]))
    lengths = tf.constant([32000, 32000])
    inference_a, _ = frontend(waveform, lengths, training=False)
    inference_b, _ = frontend(waveform, lengths, training=False)
    np.testing.assert_array_equal(inference_a.numpy(), inference_b.numpy())
    tf.random.set_seed(1)
    trained, _ = frontend(waveform, lengths, training=True)
    assert not np.allclose(trained.numpy(), inference_a.numpy())


def test_a_seq2seq_model_listens_through_the_log_mel_front_end():
    from configs.common import translation_config
    from models.seq2seq import build_model

    config = translation_config().model
    config.frontend = "log_mel"
    config.update(embedding_dim=8, encoder_units=8, decoder_units=16, attention_units=8)
    config.encoder_layers, config.ctc_weight = 1, 0.5
    with config.unlocked():
        config.audio_filters, config.audio_features = 4, 16
    model = build_model(config, None, 12)
    batch = {
        "inputs": tf.constant(np.stack([_tone(1.0, 200.0), _tone(1.0, 900.0)])),
        "input_lengths": tf.constant([16000, 8000]),
        "targets": tf.ones([2, 5], tf.int32),
    }
    out = model(batch)
    assert out["logits"].shape == (2, 5, 12) and out["alignments"].shape == (2, 5, 25)
    assert out["ctc_lengths"].numpy().tolist() == [25, 13]
    assert not np.any(out["alignments"].numpy()[1, :, 13:])  # no attention on padding


def _audio_visual_model(stream_dropout=0.0, ctc_weight=0.5):
    import ml_collections

    from configs.lipreading_common import lipreading_config, tiny
    from models.multistream import build_multistream_model

    config = tiny(lipreading_config()).model
    with config.unlocked():
        config.ctc_weight, config.stream_dropout = ctc_weight, stream_dropout
        config.primary_stream = "video"
        config.audio_filters, config.audio_features = 4, 16
        config.streams = ml_collections.ConfigDict(
            {
                "video": {"frontend": "lipnet", "frame_shape": (24, 48, 1)},
                "audio": {"frontend": "log_mel"},
            }
        )
    tf.keras.utils.set_random_seed(4)
    return build_multistream_model(config, 32)


def _audio_visual_batch():
    rng = np.random.default_rng(0)
    return {
        "inputs": {
            "video": tf.constant(rng.random((2, 25, 24, 48, 1), dtype=np.float32)),
            "audio": tf.constant(np.stack([_tone(1.0, 300.0), _tone(1.0, 800.0)])),
        },
        "input_lengths": {"video": tf.constant([25, 12]), "audio": tf.constant([16000, 7680])},
        "targets": tf.constant([[2, 5, 6, 7], [2, 8, 9, 0]]),
        "labels": tf.constant([[5, 6, 7, 3], [8, 9, 3, 0]]),
        "target_lengths": tf.constant([4, 3]),
    }


def test_watch_listen_attend_and_spell_attends_to_each_stream():
    model = _audio_visual_model()
    batch = _audio_visual_batch()
    out = model(batch)
    assert out["logits"].shape == (2, 4, 32)
    assert out["alignments"].shape == (2, 4, 25)  # the primary (video) stream's
    assert out["ctc"]["audio"][1].numpy().tolist() == [25, 12]
    names = [term.name for term in model.loss_terms(batch, out)]
    assert names == ["attention", "ctc_video", "ctc_audio"]
    # Each stream has its own attention, and a stream's memory changes the output.
    variables = {v.path for v in model.trainable_variables}
    assert any("attention_video" in p for p in variables)
    assert any("attention_audio" in p for p in variables)
    silent = dict(
        batch, inputs=dict(batch["inputs"], audio=tf.zeros_like(batch["inputs"]["audio"]))
    )
    assert not np.allclose(model(silent)["logits"].numpy(), out["logits"].numpy())


def test_stream_dropout_zeroes_a_stream_for_some_examples_and_its_ctc_term():
    model = _audio_visual_model(stream_dropout=1.0)  # every example loses one stream
    batch = _audio_visual_batch()
    tf.random.set_seed(0)
    out = model(batch, training=True)
    keep = {s: k.numpy() for s, k in out["ctc_keep"].items()}
    assert np.all(keep["video"] + keep["audio"] == 1.0)  # exactly one stream per example
    terms = {t.name: t for t in model.loss_terms(batch, out)}
    kept_labels = {s: float(np.sum(k * np.array([3, 2]))) for s, k in keep.items()}
    for stream in ("video", "audio"):
        assert float(terms[f"ctc_{stream}"].count) == kept_labels[stream]


def _joint_beam_search(model, batch, ctc_weight):
    """Joint CTC/attention beam search (beam 3, bos 2, eos 3, at most 6 labels)."""
    from models.search import beam_search

    inputs, lengths, limits = batch["inputs"], batch["input_lengths"], tf.constant([6, 6])
    return beam_search(model, inputs, lengths, 2, 3, limits, beam_size=3, ctc_weight=ctc_weight)


def test_beam_search_runs_on_the_audio_visual_model():
    model = _audio_visual_model()
    batch = _audio_visual_batch()
    out = _joint_beam_search(model, batch, ctc_weight=0.3)
    assert out["ids"].shape[0] == 2 and out["alignments"].shape[-1] == 25
    assert np.all(np.isfinite(out["scores"].numpy()))


def test_joint_search_weighs_each_streams_ctc_head_by_its_configured_share():
    from models.multistream import StreamsView, reading_streams
    from models.search import _prepare

    model = _audio_visual_model()
    batch = _audio_visual_batch()

    def search(all_heads, weights=None):
        with reading_streams(model, ["video", "audio"], all_heads, weights) as view:
            return _joint_beam_search(view, batch, ctc_weight=0.4)

    primary_only, silenced_audio = search(False), search(True, {"audio": 0.0})
    # A head weighted 0 leaves the search reading the primary stream's head alone.
    np.testing.assert_array_equal(primary_only["ids"], silenced_audio["ids"])
    np.testing.assert_allclose(primary_only["scores"], silenced_audio["scores"], rtol=1e-5)
    assert not np.allclose(search(True)["scores"], primary_only["scores"])
    view = StreamsView(model, ["video", "audio"], True, {"video": 3.0})
    memory, _ = _prepare(view, batch["inputs"], batch["input_lengths"])
    shares = [share for _, _, share in view.ctc_scores(memory)]
    assert shares == pytest.approx([0.75, 0.25])  # audio's weight defaults to 1
    with pytest.raises(ValueError, match="CTC head weights"):
        StreamsView(model, ["video", "audio"], True, {"lips": 1.0})
