"""tf.data input pipeline for prepared lip-reading shards (record schema: data_prep/records.py).

Each batch is a dict ready for the model:
    inputs float32 [B, T, H, W, C] normalised frames (zero beyond each clip's length),
    input_lengths [B], targets [B, L] bos + character ids, labels [B, L] ids + eos,
    target_lengths [B], id [B], text [B], speech_span [B, 2] (where the words are spoken, as
    fractions of the clip; the guided-attention prior's diagonal runs over it), label_windows
    [B, L, 2] (where each label's word is spoken, as fractions; -1 for spaces, eos and clips
    without word timings; the word-window prior reads it).
Augmentation (training only): random crop, horizontal flip, brightness/contrast jitter, time
masking and frame jitter (frames dropped or doubled, word timings following), drawn with
stateless ops from per-example seeds, so a seeded run is deterministic. Records stream from
disk: memory does not grow with the dataset.

With an audio stream (`audio=AudioOptions(...)`) clips without an audio track are left out
and inputs / input_lengths become {"video": ..., "audio": ...}: the waveform float32 [B, S]
in [-1, 1), with noise mixed in at a random SNR in training (white, or babble made of other
clips' audio) and at a fixed SNR when `snr_db` is set (evaluation).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from data_prep.characters import BOS_ID, EOS_ID, UNK_ID, CharVocabulary
from data_prep.records import parse_clip
from pipelines.inputs.audio import babble, mix_at_snr, unit_waveform, white_noise
from pipelines.inputs.records import epoch_records, finish_pipeline


@dataclasses.dataclass
class VideoAugmentation:
    """Training-time augmentation settings; crop_size None keeps the full frame. crop_jitter:
    the share of the free margin a training window may move by (0: the centre window, 1:
    anywhere in the frame)."""

    crop_size: tuple[int, int] | None = None
    crop_jitter: float = 1.0
    flip: bool = True
    brightness: float = 0.1
    contrast: float = 0.1
    time_masks: int = 1
    max_time_mask: int = 6
    # Each frame is dropped with this probability and, as often, shown twice: the pace of
    # speech varies a little within a clip (LipNet trained with such frame-level jitter).
    frame_jitter: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.frame_jitter <= 0.5:
            raise ValueError(
                f"frame_jitter {self.frame_jitter} is not within [0, 0.5] (the chance of dropping"
                " a frame, and as well of doubling one)"
            )


@dataclasses.dataclass
class AudioOptions:
    """The audio stream: noise kind (none, white, babble), its SNR range in training (dB), the
    share of training examples that get noise (the rest stay clean), a fixed SNR for
    evaluation (None: clean), and the other clips' audio babble is made of."""

    noise: str = "none"
    snr_range_db: tuple[float, float] = (0.0, 20.0)
    noise_fraction: float = 1.0
    snr_db: float | None = None
    babble_bank: tuple = ()  # float32 waveforms of other clips (never the scored clips)
    babble_speakers: int = 4

    def __post_init__(self) -> None:
        if self.noise not in ("none", "white", "babble"):
            raise ValueError(f"unknown noise {self.noise!r}; known: none, white, babble")
        if self.noise == "babble" and not self.babble_bank:
            raise ValueError("babble noise needs a bank of other clips' audio")
        if not 0.0 <= self.noise_fraction <= 1.0:
            raise ValueError(f"noise_fraction {self.noise_fraction} is not within [0, 1]")


def _noisy(waveform, seed, options: AudioOptions, training: bool, bank=None):
    """waveform float32 [S] -> the same with noise at the options' SNR (or unchanged);
    bank: the babble waveforms float32 [N, S'] (zero-padded)."""
    if options.noise == "none" or (not training and options.snr_db is None):
        return waveform
    seeds = tf.random.experimental.stateless_split(seed, 2)
    length = tf.shape(waveform)[0]
    if options.noise == "white":
        noise = white_noise(length, seeds[0])
    else:
        noise = babble(bank, length, seeds[0], options.babble_speakers)
    if training and options.snr_db is None:
        low, high = options.snr_range_db
        snr = tf.random.stateless_uniform([], seeds[1], low, high)
    else:
        snr = tf.constant(options.snr_db, tf.float32)
    mixed = mix_at_snr(waveform, noise, snr)
    if training and options.snr_db is None and options.noise_fraction < 1.0:
        # Its own seed, so the noise and SNR drawn stay those of noise_fraction=1.
        coin = tf.random.experimental.stateless_fold_in(seed, 2)
        noisy = tf.random.stateless_uniform([], coin) < options.noise_fraction
        return tf.where(noisy, mixed, waveform)
    return mixed


def char_table(vocabulary: CharVocabulary) -> tf.lookup.StaticHashTable:
    """Unicode code point -> character id (unknown characters map to UNK_ID)."""
    keys = tf.constant([ord(c) for c in vocabulary.characters], tf.int32)
    values = tf.constant([vocabulary.ids[c] for c in vocabulary.characters], tf.int32)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), UNK_ID)


def unit_frames(frames) -> tf.Tensor:
    """uint8 frames of any shape -> float32 in [0, 1]."""
    return tf.cast(frames, tf.float32) / 255.0


def center_crop(frames, crop_size) -> tf.Tensor:
    """The centre crop_size (height, width) of frames [..., H, W, C]; all of it when empty."""
    if not crop_size:
        return frames
    height, width = crop_size
    shape = tf.shape(frames)
    top, left = (shape[-3] - height) // 2, (shape[-2] - width) // 2
    return frames[..., top : top + height, left : left + width, :]


def normalise(frames, mean, std) -> tf.Tensor:
    """Frames in [0, 1] -> zero mean, unit variance per channel (the training split's stats)."""
    mean, std = tf.convert_to_tensor(mean, tf.float32), tf.convert_to_tensor(std, tf.float32)
    return (frames - mean) / std


def inference_frames(frames, mean, std, crop_size=None) -> tf.Tensor:
    """uint8 frames [..., H, W, C] -> the model's input at evaluation and inference."""
    cropped = center_crop(unit_frames(frames), crop_size)
    if crop_size:
        # An export's signature takes frames of any size; declaring the crop's own shape lets
        # the graph plan its convolutions for it (an unknown shape ran the CTC search ~4x slower).
        per_channel = tuple(getattr(mean, "shape", np.shape(mean)))
        channels = per_channel[-1] if per_channel else cropped.shape[-1]
        cropped = tf.ensure_shape(cropped, [*cropped.shape[:-3], *crop_size, channels])
    return normalise(cropped, mean, std)


def _word_segment(example, seed):
    """One random word of the clip (its frames and text); the whole clip without timings."""
    count = tf.shape(example["words"])[0]

    def pick():
        index = tf.random.stateless_uniform([], seed, 0, count, tf.int32)
        start = tf.clip_by_value(
            example["word_start"][index] - 2, 0, tf.shape(example["frames"])[0]
        )
        end = tf.clip_by_value(
            example["word_end"][index] + 2, start + 1, tf.shape(example["frames"])[0]
        )
        return example["frames"][start:end], example["words"][index]

    frames, text = tf.cond(count > 0, pick, lambda: (example["frames"], example["text"]))
    no_timings = tf.zeros([0], tf.int32)
    return {
        **example,
        "frames": frames,
        "text": text,
        "word_start": no_timings,
        "word_end": no_timings,
    }


def _frame_jitter(example, seed, probability: float):
    """The clip with each frame dropped with `probability` and doubled as often (at least one
    frame kept); word timings move with their frames."""
    frames = example["frames"]
    draws = tf.random.stateless_uniform([tf.shape(frames)[0]], seed)
    counts = tf.where(draws < probability, 0, tf.where(draws >= 1.0 - probability, 2, 1))
    counts = tf.cond(tf.reduce_sum(counts) > 0, lambda: counts, lambda: tf.ones_like(counts))
    # new_position[i]: where original frame i (or the end, i = T) lands in the jittered clip.
    new_position = tf.concat([[0], tf.cumsum(counts)], 0)

    def moved(times):
        return tf.gather(new_position, tf.clip_by_value(times, 0, tf.size(counts)))

    return {
        **example,
        "frames": tf.repeat(frames, counts, axis=0),
        "word_start": moved(example["word_start"]),
        "word_end": moved(example["word_end"]),
    }


def speech_span(example) -> tf.Tensor:
    """Where the clip's words are spoken: (first word's start, last word's end) as fractions
    of its frames, float32 [2]; (0, 1) for a clip without word timings."""
    starts, ends = example["word_start"], example["word_end"]
    num_frames = tf.cast(tf.maximum(tf.shape(example["frames"])[0], 1), tf.float32)

    def timed():
        span = tf.cast(tf.stack([tf.reduce_min(starts), tf.reduce_max(ends)]), tf.float32)
        return tf.clip_by_value(span / num_frames, 0.0, 1.0)

    return tf.cond(tf.size(starts) > 0, timed, lambda: tf.constant([0.0, 1.0]))


def label_windows(example, ids, space_id: int) -> tf.Tensor:
    """Where each label's word is spoken: float32 [L + 1, 2] (start, end) as fractions of
    the clip's frames for the character ids [L] and eos; (-1, -1) for spaces, eos, and every
    label of a clip whose timed words do not match its text's words (or that has none)."""
    starts, ends = example["word_start"], example["word_end"]
    num_frames = tf.cast(tf.maximum(tf.shape(example["frames"])[0], 1), tf.float32)
    is_space = tf.equal(ids, space_id)
    word_index = tf.cumsum(tf.cast(is_space, tf.int32))
    num_words = tf.reduce_sum(tf.cast(is_space, tf.int32)) + 1
    timed = tf.logical_and(tf.size(starts) > 0, tf.equal(tf.size(starts), num_words))
    spans = tf.cast(tf.stack([starts, ends], axis=1), tf.float32) / num_frames
    spans = tf.concat([spans, [[-1.0, -1.0]]], 0)  # a row to gather when untimed
    last = tf.shape(spans)[0] - 1
    # With matching timings a character's word index is below `last`.
    windows = tf.gather(spans, tf.where(timed & tf.logical_not(is_space), word_index, last))
    return tf.concat([windows, [[-1.0, -1.0]]], 0)


def crop_jitter_at(epoch: int, ramp_epochs: int) -> float:
    """The window jitter of a training epoch when it grows from the centre window (epoch 0)
    to the whole margin over ramp_epochs (0: the whole margin from the start)."""
    return min(1.0, epoch / ramp_epochs) if ramp_epochs > 0 else 1.0


def _window_start(margin, jitter: float, seed) -> tf.Tensor:
    """A window's first row (or column) given the free margin: anywhere in [0, margin] at
    jitter 1, within jitter x half the margin of the centre below."""
    if jitter >= 1.0:
        return tf.random.stateless_uniform([], seed, 0, margin + 1, tf.int32)
    centre = margin // 2
    reach = tf.cast(tf.round(jitter * tf.cast(margin, tf.float32) / 2), tf.int32)
    return tf.random.stateless_uniform([], seed, centre - reach, centre + reach + 1, tf.int32)


def _augment(frames, seed, augmentation: VideoAugmentation):
    """frames float32 [T, H, W, C] in [0, 1] -> augmented frames (same T)."""
    seeds = tf.random.experimental.stateless_split(seed, 6)
    if augmentation.crop_size:
        height, width = augmentation.crop_size
        shape = tf.shape(frames)
        top = _window_start(shape[1] - height, augmentation.crop_jitter, seeds[0])
        left = _window_start(shape[2] - width, augmentation.crop_jitter, seeds[1])
        frames = frames[:, top : top + height, left : left + width, :]
    if augmentation.flip:
        flip = tf.random.stateless_uniform([], seeds[2]) < 0.5
        frames = tf.cond(flip, lambda: tf.reverse(frames, axis=[2]), lambda: frames)
    if augmentation.brightness:
        frames += tf.random.stateless_uniform(
            [], seeds[3], -augmentation.brightness, augmentation.brightness
        )
    if augmentation.contrast:
        factor = tf.random.stateless_uniform(
            [], seeds[4], 1 - augmentation.contrast, 1 + augmentation.contrast
        )
        mean = tf.reduce_mean(frames)
        frames = (frames - mean) * factor + mean
    num_frames = tf.shape(frames)[0]
    mask_seeds = tf.random.experimental.stateless_split(seeds[5], max(augmentation.time_masks, 1))
    keep = tf.ones([num_frames], tf.float32)
    for i in range(augmentation.time_masks):
        width = tf.random.stateless_uniform(
            [], mask_seeds[i], 0, augmentation.max_time_mask + 1, tf.int32
        )
        start = tf.random.stateless_uniform(
            [], tf.reverse(mask_seeds[i], [0]), 0, tf.maximum(num_frames - width, 0) + 1, tf.int32
        )
        span = (tf.range(num_frames) >= start) & (tf.range(num_frames) < start + width)
        keep *= 1.0 - tf.cast(span, tf.float32)
    mean_frame = tf.reduce_mean(frames, axis=0, keepdims=True)
    return frames * keep[:, None, None, None] + mean_frame * (1.0 - keep)[:, None, None, None]


def make_video_dataset(
    files: list[str],
    *,
    mean,
    std,
    batch_size: int,
    training: bool,
    vocabulary: CharVocabulary | None = None,
    augmentation: VideoAugmentation | None = None,
    seed: int = 0,
    epoch: int = 0,
    bucket_boundaries=(40, 60, 80, 100),
    shuffle_buffer: int = 256,
    max_frames: int = 0,
    shard: tuple[int, int] | None = None,
    word_segments: bool = False,
    audio: AudioOptions | None = None,
) -> tf.data.Dataset:
    """One epoch of batches; order and augmentation depend only on (seed, epoch) in training.

    word_segments=True (curriculum, as LipNet and WLAS start training) replaces each clip by
    one of its words, cut at the word's aligned frames, when the corpus has word timings.
    """
    vocabulary = vocabulary or CharVocabulary()
    augmentation = augmentation or VideoAugmentation()
    if audio is not None and augmentation.frame_jitter:
        raise ValueError("frame_jitter would move frames off their audio; use it on video alone")
    table = char_table(vocabulary)
    space_id = vocabulary.ids[" "]
    dataset = epoch_records(
        files,
        training=training,
        seed=seed,
        epoch=epoch,
        shuffle_buffer=shuffle_buffer,
        shard=shard,
    )
    dataset = dataset.map(parse_clip, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if max_frames:
        dataset = dataset.filter(lambda x: tf.shape(x["frames"])[0] <= max_frames)
    if audio is not None:
        dataset = dataset.filter(lambda x: x["sample_rate"] > 0)
    seeds = tf.data.Dataset.random(seed=seed * 1000003 + epoch).batch(2)
    bank = None
    if audio is not None and audio.noise == "babble":
        longest = max(len(b) for b in audio.babble_bank)
        padded = np.zeros((len(audio.babble_bank), longest), np.float32)
        for row, voice in enumerate(audio.babble_bank):
            padded[row, : len(voice)] = voice
        bank = tf.constant(padded)

    def finish(example, example_seed):
        example_seed = tf.cast(example_seed, tf.int32)
        if word_segments:
            example = _word_segment(example, tf.reverse(example_seed, [0]))
        if training:
            if augmentation.frame_jitter:
                seed = tf.reverse(example_seed, [0]) + 3
                example = _frame_jitter(example, seed, augmentation.frame_jitter)
            frames = _augment(unit_frames(example["frames"]), example_seed, augmentation)
            frames = normalise(frames, mean, std)
        else:
            frames = inference_frames(example["frames"], mean, std, augmentation.crop_size)
        ids = table.lookup(tf.strings.unicode_decode(example["text"], "UTF-8"))
        inputs, input_lengths = frames, tf.shape(frames)[0]
        if audio is not None:
            waveform = _noisy(
                unit_waveform(example["audio"]),
                tf.reverse(example_seed, [0]) + 7,
                audio,
                training,
                bank,
            )
            inputs = {"video": frames, "audio": waveform}
            input_lengths = {"video": input_lengths, "audio": tf.shape(waveform)[0]}
        return {
            "id": example["id"],
            "text": example["text"],
            "inputs": inputs,
            "input_lengths": input_lengths,
            "targets": tf.concat([[BOS_ID], ids], 0),
            "labels": tf.concat([ids, [EOS_ID]], 0),
            "target_lengths": tf.shape(ids)[0] + 1,
            "speech_span": speech_span(example),
            "label_windows": label_windows(example, ids, space_id),
        }

    dataset = tf.data.Dataset.zip((dataset, seeds)).map(
        finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    if training:
        dataset = dataset.bucket_by_sequence_length(
            lambda x: x["input_lengths"]["video"] if audio else x["input_lengths"],
            list(bucket_boundaries),
            [batch_size] * (len(bucket_boundaries) + 1),
        )
    else:
        dataset = dataset.padded_batch(batch_size)
    return finish_pipeline(dataset)
