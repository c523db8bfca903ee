"""Noise at a given SNR, white and babble, for the audio stream."""

import numpy as np
import pytest
import tensorflow as tf

from pipelines.inputs.audio import babble, mix_at_snr, unit_waveform, white_noise


def _snr_db(clean, mixed, length=None):
    length = length or len(clean)
    noise = mixed[:length] - clean[:length]
    return 10 * np.log10(np.mean(clean[:length] ** 2) / np.mean(noise**2))


@pytest.mark.parametrize("snr_db", [20.0, 10.0, 0.0, -5.0])
def test_white_noise_is_mixed_at_the_asked_snr(snr_db):
    t = np.arange(16000) / 16000
    clean = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    noise = white_noise(16000, tf.constant([1, 2]))
    mixed = mix_at_snr(clean, noise, snr_db).numpy()
    assert _snr_db(clean, mixed) == pytest.approx(snr_db, abs=1e-3)


def test_only_the_real_samples_count_and_get_noise():
    clean = np.zeros(1000, np.float32)
    clean[:600] = np.random.default_rng(0).normal(size=600).astype(np.float32)
    noise = np.random.default_rng(1).normal(size=250).astype(np.float32)  # tiled to 1000
    mixed = mix_at_snr(clean, noise, 5.0, length=600).numpy()
    assert _snr_db(clean, mixed, 600) == pytest.approx(5.0, abs=1e-3)
    assert not mixed[600:].any()  # padding stays zero
    silent = mix_at_snr(np.zeros(100, np.float32), noise, 0.0).numpy()
    assert not silent.any()


def test_babble_sums_other_utterances_deterministically():
    others = np.stack(
        [np.sin(2 * np.pi * f * np.arange(8000) / 16000) for f in (200, 300, 500)]
    ).astype(np.float32)
    a = babble(others, 12000, tf.constant([3, 4]), speakers=3).numpy()
    b = babble(others, 12000, tf.constant([3, 4]), speakers=3).numpy()
    c = babble(others, 12000, tf.constant([5, 6]), speakers=3).numpy()
    assert a.shape == (12000,) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a).max() <= 3.0 + 1e-5 and np.std(a) > 0.3  # three voices at most


def test_int16_samples_become_unit_floats():
    out = unit_waveform(np.array([-32768, 0, 16384, 32767], np.int16)).numpy()
    np.testing.assert_allclose(out, [-1.0, 0.0, 0.5, 32767 / 32768])
