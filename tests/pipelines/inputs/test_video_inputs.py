import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from data_prep.characters import CharVocabulary
from data_prep.lipreading import LipreadingSettings, corpus_clips, prepare_lipreading
from data_prep.records import parse_clip, read_manifest, split_files
from data_prep.synthetic.faces import write_synthetic_corpus
from pipelines.inputs.video import (
    AudioOptions,
    VideoAugmentation,
    _augment,
    _frame_jitter,
    center_crop,
    crop_jitter_at,
    make_video_dataset,
)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    write_synthetic_corpus(root / "raw", 5, seed=11)
    prepare_lipreading(
        corpus_clips("grid", root / "raw"),
        root / "prep",
        LipreadingSettings(clips_per_shard=2),
        split_of=lambda spec: "train",
    )
    return root / "prep", read_manifest(root / "prep", "lipreading")


def _dataset(prepared, training, seed=0, crop=(44, 88), augmentation=None, **options):
    prep, manifest = prepared
    stats = manifest["normalisation"]
    augmentation = dataclasses.replace(augmentation or VideoAugmentation(), crop_size=crop)
    return make_video_dataset(
        split_files(prep, manifest, "train"),
        mean=stats["mean"],
        std=stats["std"],
        batch_size=2,
        training=training,
        seed=seed,
        augmentation=augmentation,
        **options,
    )


def test_batches_hold_normalised_frames_and_character_targets(prepared):
    _, manifest = prepared
    texts = {c["id"]: c["text"] for c in manifest["splits"]["train"]["clips"]}
    vocabulary = CharVocabulary()
    seen = 0
    for batch in _dataset(prepared, training=False):
        inputs = batch["inputs"].numpy()
        assert inputs.shape[2:] == (44, 88, 3)
        for row, n in enumerate(batch["input_lengths"].numpy()):
            assert np.all(inputs[row, n:] == 0.0)
            clip_id = batch["id"].numpy()[row].decode()
            assert vocabulary.decode(batch["labels"].numpy()[row]) == texts[clip_id]
            seen += 1
    assert seen == manifest["splits"]["train"]["num_examples"] == 5
    frames = np.concatenate(
        [b["inputs"].numpy().reshape(-1, 3) for b in _dataset(prepared, training=False, crop=None)]
    )
    assert np.all(np.abs(frames.mean(0)) < 0.35) and np.all(np.abs(frames.std(0) - 1) < 0.35)


def test_pipelines_run_without_the_tf_data_autotuner(prepared):
    # With autotuning on, each epoch's new pipeline stalled for tens of seconds in training.
    for training in (True, False):
        assert _dataset(prepared, training).options().autotune.enabled is False


def test_training_augmentation_is_deterministic_per_seed(prepared):
    first = [b["inputs"].numpy() for b in _dataset(prepared, training=True, seed=3)]
    again = [b["inputs"].numpy() for b in _dataset(prepared, training=True, seed=3)]
    other = [b["inputs"].numpy() for b in _dataset(prepared, training=True, seed=4)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first, other, strict=False)
    )


def test_window_jitter_grows_from_the_centre_window_to_the_whole_margin():
    import tensorflow as tf

    frames = tf.random.stateless_uniform([3, 40, 80, 1], [1, 2])
    plain = dict(flip=False, brightness=0.0, contrast=0.0, time_masks=0)

    def corners(jitter):
        """The (top, left) each of 300 seeds puts a 36x72 window of the 40x80 frames at."""
        augmentation = VideoAugmentation(crop_size=(36, 72), crop_jitter=jitter, **plain)
        found = set()
        for i in range(300):
            window = _augment(frames, tf.constant([i, 5]), augmentation).numpy()
            found |= {
                (top, left)
                for top in range(5)
                for left in range(9)
                if np.array_equal(window, frames[:, top : top + 36, left : left + 72].numpy())
            }
        return found

    assert corners(0.0) == {(2, 4)}
    assert np.array_equal(
        _augment(frames, tf.constant([3, 5]), VideoAugmentation((36, 72), 0.0, **plain)),
        center_crop(frames, (36, 72)),
    )
    assert corners(0.5) == {(t, lf) for t in (1, 2, 3) for lf in (2, 3, 4, 5, 6)}
    assert corners(1.0) == {(t, lf) for t in range(5) for lf in range(9)}
    assert [crop_jitter_at(e, 4) for e in (0, 1, 2, 4, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert crop_jitter_at(0, 0) == 1.0


def test_word_curriculum_cuts_single_aligned_words(prepared):
    _, manifest = prepared
    texts = {c["id"]: c["text"] for c in manifest["splits"]["train"]["clips"]}
    frames = {c["id"]: c["num_frames"] for c in manifest["splits"]["train"]["clips"]}
    dataset = _dataset(prepared, training=True, seed=1, crop=None, word_segments=True)
    vocabulary = CharVocabulary()
    for batch in dataset:
        for row, clip_id in enumerate(batch["id"].numpy()):
            clip_id = clip_id.decode()
            word = vocabulary.decode(batch["labels"].numpy()[row])
            assert word in texts[clip_id].split()
            assert batch["input_lengths"].numpy()[row] < frames[clip_id]


def _word_timings(prepared) -> dict:
    """Clip id -> [(start, end)] of its words as fractions of its frames, from the records."""
    prep, manifest = prepared
    timings = {}
    for raw in tf.data.TFRecordDataset(split_files(prep, manifest, "train")):
        clip = parse_clip(raw)
        num_frames = int(tf.shape(clip["frames"])[0])
        starts, ends = clip["word_start"].numpy(), clip["word_end"].numpy()
        timings[clip["id"].numpy().decode()] = [
            (s / num_frames, e / num_frames) for s, e in zip(starts, ends, strict=True)
        ]
    return timings


def test_batches_say_where_the_words_are_spoken(prepared):
    expected = {
        clip_id: (min(s for s, _ in words), max(e for _, e in words))
        for clip_id, words in _word_timings(prepared).items()
    }
    seen = 0
    for batch in _dataset(prepared, training=True, seed=2):
        for clip_id, span in zip(batch["id"].numpy(), batch["speech_span"].numpy(), strict=True):
            # The synthetic speakers pause before their first word and after their last.
            assert 0.0 < span[0] < span[1] < 1.0
            assert span == pytest.approx(expected[clip_id.decode()], abs=1e-6)
            seen += 1
    assert seen == 5
    for batch in _dataset(prepared, training=True, seed=2, word_segments=True):
        assert np.all(batch["speech_span"].numpy() == [0.0, 1.0])


def test_frame_jitter_drops_and_doubles_frames_and_moves_word_timings_with_them():
    # Frame i holds the value i, so the jittered clip says which original frame each one is.
    frames = tf.reshape(tf.range(75, dtype=tf.float32), [75, 1, 1, 1])
    starts, ends = tf.constant([5, 20, 41]), tf.constant([19, 40, 75])
    example = {"frames": frames, "word_start": starts, "word_end": ends}
    counts_seen = set()
    for seed in range(20):
        jittered = _frame_jitter(example, tf.constant([seed, 1]), 0.1)
        values = jittered["frames"].numpy().ravel().astype(int)
        counts = np.bincount(values, minlength=75)
        counts_seen |= set(counts.tolist())
        assert np.all(np.diff(values) >= 0) and counts.max() <= 2
        for old, new in zip(
            np.concatenate([starts, ends]),
            np.concatenate([jittered["word_start"], jittered["word_end"]]),
            strict=True,
        ):
            # Everything before a word's new boundary came from before its old one.
            assert np.all(values[:new] < old) and np.all(values[new:] >= old)
    assert counts_seen == {0, 1, 2}
    again = _frame_jitter(example, tf.constant([7, 1]), 0.1)["frames"]
    assert np.array_equal(again, _frame_jitter(example, tf.constant([7, 1]), 0.1)["frames"])
    assert np.array_equal(_frame_jitter(example, tf.constant([7, 1]), 0.0)["frames"], frames)
    everything_dropped = _frame_jitter(example, tf.constant([7, 1]), 1.0)
    assert np.array_equal(everything_dropped["frames"], frames)


def test_frame_jitter_changes_training_clip_lengths_only(prepared, prepared_with_audio):
    _, manifest = prepared
    frames = {c["id"]: c["num_frames"] for c in manifest["splits"]["train"]["clips"]}
    options = dict(crop=None, training=True, seed=5)
    jitter = VideoAugmentation(frame_jitter=0.2)
    changed = 0
    for batch in _dataset(prepared, **options, augmentation=jitter):
        lengths = batch["input_lengths"].numpy()
        for clip_id, length in zip(batch["id"].numpy(), lengths, strict=True):
            changed += int(length != frames[clip_id.decode()])
            assert 0.6 * frames[clip_id.decode()] < length < 1.4 * frames[clip_id.decode()]
    assert changed >= 3
    for batch in _dataset(prepared, crop=None, training=False, augmentation=jitter):
        lengths = batch["input_lengths"].numpy()
        for clip_id, length in zip(batch["id"].numpy(), lengths, strict=True):
            assert length == frames[clip_id.decode()]
    with pytest.raises(ValueError, match="frame_jitter"):
        _dataset(prepared_with_audio, **options, augmentation=jitter, audio=AudioOptions())
    with pytest.raises(ValueError, match=r"frame_jitter 0.6 is not within \[0, 0.5\]"):
        VideoAugmentation(frame_jitter=0.6)


def test_shards_split_the_clips_between_input_pipelines(prepared):
    _, manifest = prepared

    def ids(shard):
        dataset = _dataset(prepared, training=True, crop=None, shard=shard)
        return {i.decode() for batch in dataset for i in batch["id"].numpy()}

    first, second = ids((2, 0)), ids((2, 1))
    assert first and second and not first & second
    assert len(first | second) == manifest["splits"]["train"]["num_examples"]


@pytest.fixture(scope="module")
def prepared_with_audio(tmp_path_factory):
    root = tmp_path_factory.mktemp("audiovisual")
    write_synthetic_corpus(root / "raw", 4, seed=12, audio=True)
    prepare_lipreading(
        corpus_clips("grid", root / "raw"),
        root / "prep",
        LipreadingSettings(clips_per_shard=2, audio=True),
        split_of=lambda spec: "train",
    )
    return root / "prep", read_manifest(root / "prep", "lipreading")


def _clean_and_noisy(prepared_with_audio, options):
    clean = next(iter(_dataset(prepared_with_audio, False, audio=AudioOptions())))
    noisy = next(iter(_dataset(prepared_with_audio, False, audio=options)))
    return clean, noisy


def test_the_audio_stream_rides_along_with_the_frames(prepared_with_audio):
    clean, _ = _clean_and_noisy(prepared_with_audio, AudioOptions())
    assert set(clean["inputs"]) == {"video", "audio"}
    video, audio = clean["inputs"]["video"], clean["inputs"]["audio"]
    lengths = clean["input_lengths"]
    assert video.shape[0] == audio.shape[0] == 2
    for frames, samples in zip(lengths["video"].numpy(), lengths["audio"].numpy(), strict=True):
        assert samples == round(frames / 25 * 16000)
    assert 0.0 < float(np.abs(audio.numpy()).max()) <= 1.0


@pytest.mark.parametrize("noise", ["white", "babble"])
def test_evaluation_noise_is_mixed_at_the_asked_snr(prepared_with_audio, noise):
    bank = ()
    if noise == "babble":
        t = np.arange(16000) / 16000
        bank = tuple(np.sin(2 * np.pi * f * t).astype(np.float32) for f in (150, 350, 650))
    options = AudioOptions(noise=noise, snr_db=5.0, babble_bank=bank)
    clean, noisy = _clean_and_noisy(prepared_with_audio, options)
    for row, length in enumerate(clean["input_lengths"]["audio"].numpy()):
        signal = clean["inputs"]["audio"].numpy()[row, :length]
        added = noisy["inputs"]["audio"].numpy()[row, :length] - signal
        snr = 10 * np.log10(np.mean(signal**2) / np.mean(added**2))
        assert snr == pytest.approx(5.0, abs=0.01)
    # The frames and the targets are those of the clean batch.
    np.testing.assert_array_equal(clean["targets"].numpy(), noisy["targets"].numpy())


def test_training_noise_is_seeded_and_within_its_snr_range(prepared_with_audio):
    options = AudioOptions(noise="white", snr_range_db=(0.0, 10.0))
    clean = {}
    for batch in _dataset(prepared_with_audio, False, audio=AudioOptions()):
        for row, clip_id in enumerate(batch["id"].numpy()):
            length = batch["input_lengths"]["audio"].numpy()[row]
            clean[clip_id] = batch["inputs"]["audio"].numpy()[row, :length]
    snrs = []
    for _ in range(2):  # the same seed gives the same noise
        for batch in _dataset(prepared_with_audio, True, audio=options):
            for row, clip_id in enumerate(batch["id"].numpy()):
                signal = clean[clip_id]
                added = batch["inputs"]["audio"].numpy()[row, : len(signal)] - signal
                snrs.append(10 * np.log10(np.mean(signal**2) / np.mean(added**2)))
    half = len(snrs) // 2
    assert half == 4 and snrs[:half] == pytest.approx(snrs[half:])
    assert all(0.0 <= snr <= 10.0 for snr in snrs) and np.std(snrs[:half]) > 0.1


def test_noise_fraction_leaves_the_other_training_examples_clean(prepared_with_audio):
    clean = {}
    for batch in _dataset(prepared_with_audio, False, audio=AudioOptions()):
        for row, clip_id in enumerate(batch["id"].numpy()):
            length = batch["input_lengths"]["audio"].numpy()[row]
            clean[clip_id] = batch["inputs"]["audio"].numpy()[row, :length]

    def noisy_flags(fraction, seeds):
        options = AudioOptions(noise="white", snr_range_db=(0.0, 10.0), noise_fraction=fraction)
        flags = []
        for seed in seeds:
            for batch in _dataset(prepared_with_audio, True, seed=seed, audio=options):
                for row, clip_id in enumerate(batch["id"].numpy()):
                    signal = clean[clip_id]
                    received = batch["inputs"]["audio"].numpy()[row, : len(signal)]
                    flags.append(not np.array_equal(received, signal))
        return flags

    assert not any(noisy_flags(0.0, [0, 1]))
    assert all(noisy_flags(1.0, [0, 1]))
    mixed = noisy_flags(0.5, range(6))
    assert 0 < sum(mixed) < len(mixed)
    with pytest.raises(ValueError, match="noise_fraction"):
        AudioOptions(noise="white", noise_fraction=1.5)


def test_the_short_budget_recipe_differs_from_the_hours_only_in_its_ramp():
    from configs import grid_lipnet

    hour = grid_lipnet.get_config().to_dict()
    short = grid_lipnet.get_config("short_budget").to_dict()
    assert hour["data"].pop("crop_jitter_ramp_below_epochs") == 100
    assert short["data"].pop("crop_jitter_ramp_below_epochs") == 0
    assert hour["data"]["crop_jitter_epochs"] == 30
    assert short == hour
    guidance = (hour["model"]["guided_attention_weight"], hour["model"]["guided_attention_prior"])
    assert guidance == (1.0, "words") and hour["decode"]["serving_default"] == "attention"
    assert hour["model"]["frame_label_weight"] == 0.5


def test_each_label_knows_where_its_word_is_spoken(prepared):
    timings = _word_timings(prepared)
    vocabulary = CharVocabulary()
    seen = 0
    for batch in _dataset(prepared, training=True, seed=3):
        for row, clip_id in enumerate(batch["id"].numpy()):
            text = batch["text"].numpy()[row].decode()
            windows = batch["label_windows"].numpy()[row]
            expected = []
            for index, word in enumerate(text.split(" ")):
                if index:
                    expected.append((-1.0, -1.0))  # the space before it
                expected.extend([timings[clip_id.decode()][index]] * len(word))
            expected.append((-1.0, -1.0))  # eos
            length = batch["target_lengths"].numpy()[row]
            assert length == len(expected) == len(vocabulary.encode(text)) + 1
            np.testing.assert_allclose(windows[:length], expected, atol=1e-6)
            seen += 1
    assert seen == 5
    # Single-word segments carry no timings: every label is free.
    for batch in _dataset(prepared, training=True, seed=3, word_segments=True):
        lengths = batch["target_lengths"].numpy()
        for row, length in enumerate(lengths):
            assert np.all(batch["label_windows"].numpy()[row, :length] == -1.0)
