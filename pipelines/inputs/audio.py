"""Waveforms for the audio stream: int16 records to floats, and noise mixed at a given SNR.

Stock TensorFlow ops, so the same code serves the tf.data pipeline (augmentation with a
random SNR) and evaluation (`evaluate --snr=...`).
"""

from __future__ import annotations

import tensorflow as tf


def unit_waveform(samples) -> tf.Tensor:
    """int16 samples [..., S] -> float32 in [-1, 1)."""
    return tf.cast(samples, tf.float32) / 32768.0


def mix_at_snr(signal, noise, snr_db, length=None) -> tf.Tensor:
    """signal + noise scaled so that 10·log10(P_signal / P_noise) = snr_db, over the first
    `length` samples (all when None); float32 [S] each, noise tiled or cut to the signal.

    Powers are means of squares over the real samples; silence stays silence (no noise is
    added to an all-zero signal, whose SNR is undefined).
    """
    signal = tf.cast(signal, tf.float32)
    noise = tf.cast(noise, tf.float32)
    size = tf.shape(signal)[0]
    repeats = size // tf.maximum(tf.shape(noise)[0], 1) + 1
    noise = tf.tile(noise, [repeats])[:size]
    length = size if length is None else tf.cast(length, tf.int32)
    real = tf.cast(tf.range(size) < length, tf.float32)
    count = tf.maximum(tf.cast(length, tf.float32), 1.0)
    signal_power = tf.reduce_sum(tf.square(signal) * real) / count
    noise_power = tf.reduce_sum(tf.square(noise) * real) / count
    target = signal_power / tf.pow(10.0, tf.cast(snr_db, tf.float32) / 10.0)
    scale = tf.where(noise_power > 0, tf.sqrt(target / tf.maximum(noise_power, 1e-20)), 0.0)
    return signal + scale * noise * real


def white_noise(length, seed) -> tf.Tensor:
    """Gaussian white noise [length] from a stateless seed (shape [2] int32)."""
    return tf.random.stateless_normal([length], seed)


def babble(others, length, seed, speakers: int = 4) -> tf.Tensor:
    """The sum of `speakers` other utterances (float32 [N, S] rows, picked with a stateless
    seed), each started at a random offset and tiled or cut to `length` samples."""
    others = tf.convert_to_tensor(others, tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 2 * speakers)
    mixture = tf.zeros([length], tf.float32)
    for i in range(speakers):
        row = tf.random.stateless_uniform([], seeds[2 * i], 0, tf.shape(others)[0], tf.int32)
        voice = others[row]
        offset = tf.random.stateless_uniform([], seeds[2 * i + 1], 0, tf.shape(voice)[0], tf.int32)
        voice = tf.roll(voice, -offset, axis=0)
        repeats = length // tf.maximum(tf.shape(voice)[0], 1) + 1
        mixture += tf.tile(voice, [repeats])[:length]
    return mixture
