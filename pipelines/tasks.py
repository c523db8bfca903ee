"""What differs between tasks, behind one small interface used by the training binary.

A task knows its prepared data, builds its model, yields training batches for an epoch and
scores the model on the validation split. Everything else (the loop, checkpoints, logging)
is shared in pipelines/train.py.
"""

from __future__ import annotations

import ml_collections
import tensorflow as tf
from absl import logging

from pipelines import experiment


def _spec(shape, dtype=tf.int32):
    return tf.TensorSpec(shape, dtype)


class TranslationTask:
    """Text to text; validation metric: greedy-decoded BLEU (higher is better)."""

    metric = "bleu"
    higher_is_better = True

    def __init__(self, config: ml_collections.ConfigDict):
        from pipelines.inputs.text import load_manifest

        self.config = config
        self.prepared_dir = experiment.prepared_dir_of(config)
        self.manifest = load_manifest(self.prepared_dir)

    def build_model(self):
        return experiment.model_for(self.config, self.manifest)

    def batch_signature(self) -> dict:
        ids, lengths = _spec([None, None]), _spec([None])
        return {
            "inputs": ids,
            "input_lengths": lengths,
            "targets": ids,
            "labels": ids,
            "target_lengths": lengths,
        }

    def train_dataset(self, epoch: int, batch_size=None, shard=None) -> tf.data.Dataset:
        from pipelines.inputs.text import make_config_dataset

        return make_config_dataset(
            self.config,
            self.prepared_dir,
            self.manifest,
            self.config.data.train_split,
            training=True,
            epoch=epoch,
            batch_size=batch_size,
            shard=shard,
        )

    def make_validator(self, model):
        """A function step -> (metric, example output), or None without a validation split."""
        from pipelines.train import corpus_bleu, read_lines
        from pipelines.translator import translate_all

        split = self.config.data.eval_split
        if split not in self.manifest["splits"]:
            logging.warning("no %r split prepared: validation is skipped", split)
            return None
        limit = self.config.eval_max_examples
        sources = read_lines(self.prepared_dir / f"{split}.source.txt", limit)
        references = read_lines(self.prepared_dir / f"{split}.target.txt", limit)
        translator = experiment.translator_for(model, self.config, self.prepared_dir, self.manifest)

        def validate() -> tuple[float, str]:
            hypotheses = translate_all(translator.translate_greedy, sources)["text"]
            return corpus_bleu(hypotheses, references), hypotheses[0]

        return validate


class LipreadingTask:
    """Mouth frames to characters; validation metric: WER (lower is better)."""

    metric = "wer"
    higher_is_better = False

    def __init__(self, config: ml_collections.ConfigDict):
        from data_prep.characters import CharVocabulary
        from pipelines.inputs.video import load_video_manifest

        self.config = config
        self.prepared_dir = experiment.prepared_dir_of(config)
        self.manifest = load_video_manifest(self.prepared_dir)
        self.vocabulary = CharVocabulary()
        stored = self.manifest["frame_shape"]
        crop = tuple(config.data.get("crop_size") or ())
        self.frame_shape = (*crop, stored[2]) if crop else tuple(stored)

    def build_model(self):
        from models.seq2seq import build_model

        model_config = self.config.model
        with model_config.unlocked():
            model_config.frame_shape = self.frame_shape
        return build_model(model_config, None, self.vocabulary.size)

    def batch_signature(self) -> dict:
        return {
            "inputs": _spec([None, None, *self.frame_shape], tf.float32),
            "input_lengths": _spec([None]),
            "targets": _spec([None, None]),
            "labels": _spec([None, None]),
            "target_lengths": _spec([None]),
        }

    def _dataset(self, split: str, training: bool, epoch: int = 0, batch_size=None, shard=None):
        from pipelines.inputs.video import VideoAugmentation, make_video_dataset, video_split_files

        data = self.config.data
        stats = self.manifest["normalisation"]
        augmentation = VideoAugmentation(
            crop_size=tuple(data.crop_size) if data.get("crop_size") else None,
            flip=data.get("flip", True),
            brightness=data.get("brightness", 0.1),
            contrast=data.get("contrast", 0.1),
            time_masks=data.get("time_masks", 1),
            max_time_mask=data.get("max_time_mask", 6),
        )
        return make_video_dataset(
            video_split_files(self.prepared_dir, self.manifest, split),
            mean=stats["mean"],
            std=stats["std"],
            batch_size=batch_size or self.config.batch_size,
            training=training,
            vocabulary=self.vocabulary,
            augmentation=augmentation,
            seed=self.config.seed,
            epoch=epoch,
            bucket_boundaries=tuple(data.bucket_boundaries),
            shuffle_buffer=data.shuffle_buffer,
            shard=shard,
            word_segments=training and epoch < data.get("curriculum_word_epochs", 0),
        )

    def train_dataset(self, epoch: int, batch_size=None, shard=None) -> tf.data.Dataset:
        return self._dataset(self.config.data.train_split, True, epoch, batch_size, shard)

    def make_validator(self, model):
        """Greedy (CTC when the model has a CTC head, else attention) WER on the eval split."""
        import jiwer

        from pipelines.transcriber import Transcriber

        split = self.config.data.eval_split
        if split not in self.manifest["splits"]:
            logging.warning("no %r split prepared: validation is skipped", split)
            return None
        transcriber = Transcriber(
            model, self.config, self.manifest["normalisation"], self.vocabulary
        )
        mode = "ctc_greedy" if transcriber.has_ctc else "attention"
        function = transcriber.functions[mode]
        limit = self.config.eval_max_examples

        def validate() -> tuple[float, str]:
            references, hypotheses = [], []
            for batch in self._raw_batches(split, limit):
                out = function(batch["frames"], batch["lengths"])
                hypotheses.extend(t.decode() for t in out["text"].numpy())
                references.extend(t.decode() for t in batch["text"].numpy())
            return 100.0 * jiwer.wer(references, hypotheses), hypotheses[0]

        return validate

    def _raw_batches(self, split: str, limit: int):
        from pipelines.inputs.video import decode_clip, video_split_files

        files = video_split_files(self.prepared_dir, self.manifest, split)

        def decode(raw):
            clip = decode_clip(raw)
            return {
                "frames": clip["frames"],
                "lengths": tf.shape(clip["frames"])[0],
                "text": clip["text"],
            }

        dataset = tf.data.TFRecordDataset(files).map(decode)
        if limit:
            dataset = dataset.take(limit)
        return dataset.padded_batch(self.config.batch_size)


def task_for(config: ml_collections.ConfigDict):
    """The task object named by config.task."""
    tasks = {"translation": TranslationTask, "lipreading": LipreadingTask}
    if config.task not in tasks:
        raise ValueError(f"unknown task {config.task!r}; known: {sorted(tasks)}")
    return tasks[config.task](config)
