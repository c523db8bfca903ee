"""Lip reading: mouth frames in, characters out; validation metric WER (greedy decoding)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import logging

from data_prep.characters import CharVocabulary
from data_prep.contact_sheet import plot_roi_trajectory
from data_prep.corpora.grid import GRID_GRAMMAR, grid_sentence_id
from data_prep.errors import ConfigError, NotPreparedError
from data_prep.lipreading import (
    LipreadingSettings,
    evaluation_clips,
    prepare_lipreading,
    prepare_lipreading_corpus,
)
from data_prep.records import parse_clip, read_manifest, split_files
from models.seq2seq import build_model
from pipelines.artifacts.exports import (
    load_export,
    read_export_info,
    signature,
    signature_catalogue,
)
from pipelines.inference.lipreading import preparation_settings, shortest_clip
from pipelines.inputs.video import VideoAugmentation, crop_jitter_at, make_video_dataset
from pipelines.scoring import attention_in_words, character_error_rate, word_error_rate
from pipelines.signatures.transcriber import Transcriber, transcribe_batches
from pipelines.tasks.base import Task


class LipreadingTask(Task):
    """Raw face videos -> mouth crops -> LipNet/ResNet + attention decoder (+ CTC) -> text."""

    name = "lipreading"
    metric = "wer"
    higher_is_better = False

    def __init__(self, config):
        super().__init__(config)
        self.vocabulary = CharVocabulary()

    def prepare(self) -> dict:
        return prepare_lipreading_corpus(self.config.data, seed=self.config.seed)

    def prepare_with_beam(self, pipeline_options: str = "") -> dict:
        # Late: apache-beam is an optional extra (lipseq[beam]), loaded only when asked for.
        from data_prep.beam_prep import prepare_with_beam

        return prepare_with_beam(self.config.data, pipeline_options)

    def check_prepared(self) -> None:
        """Also refuses a config whose preparation settings differ from those the data was
        prepared with: the model would train on clips unlike the ones it is served."""
        super().check_prepared()
        ours = LipreadingSettings.from_config(self.config.data)
        if differences := ours.differences(self.manifest["settings"]):
            raise ConfigError(
                f"config.data disagrees with {self.prepared_dir / 'manifest.json'}: "
                f"{'; '.join(differences)}; prepare again or set --config.data.<key> to match"
            )

    def describe_prepared(self, manifest: dict) -> list[str]:
        lines = [
            f"{split}: {entry['num_examples']} clips, {entry['num_frames']} frames "
            f"({entry['num_skipped']} skipped)"
            for split, entry in manifest["splits"].items()
        ]
        if manifest["skipped_by_reason"]:
            lines.append(f"skipped by reason: {manifest['skipped_by_reason']}")
        lines.append(f"timing: {manifest['timing']}")
        if manifest.get("contact_sheet"):
            lines.append(f"contact sheet: {self.prepared_dir / manifest['contact_sheet']}")
        return lines

    def plot_example(self, example_id: str) -> Path:
        """The stored mouth-box trajectory of one clip (centre, size, confidence over time)."""
        return plot_clip_roi(self.prepared_dir, example_id)

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) the model sees: the stored crop, or config.data.crop_size."""
        stored = self.manifest["frame_shape"]
        crop = tuple(self.config.data.crop_size)
        return (*crop, stored[2]) if crop else tuple(stored)

    def build_model(self):
        model_config = self.config.model
        with model_config.unlocked():
            model_config.frame_shape = self.frame_shape
        return build_model(model_config, None, self.vocabulary.size)

    def batch_signature(self) -> dict:
        return {
            "inputs": tf.TensorSpec([None, None, *self.frame_shape], tf.float32),
            "input_lengths": tf.TensorSpec([None], tf.int32),
            "targets": tf.TensorSpec([None, None], tf.int32),
            "labels": tf.TensorSpec([None, None], tf.int32),
            "target_lengths": tf.TensorSpec([None], tf.int32),
            # Guided attention's priors read these; a key missing here never reaches the loss.
            "speech_span": tf.TensorSpec([None, 2], tf.float32),
            "label_windows": tf.TensorSpec([None, None, 2], tf.float32),
        }

    def train_dataset(self, epoch: int, batch_size=None, shard=None) -> tf.data.Dataset:
        data = self.config.data
        augmentation = VideoAugmentation(
            crop_size=tuple(data.crop_size) or None,
            crop_jitter=crop_jitter_at(epoch, self.crop_jitter_epochs),
            flip=data.flip,
            brightness=data.brightness,
            contrast=data.contrast,
            time_masks=data.time_masks,
            max_time_mask=data.max_time_mask,
            frame_jitter=data.frame_jitter,
        )
        stats = self.manifest["normalisation"]
        return make_video_dataset(
            split_files(self.prepared_dir, self.manifest, data.train_split),
            mean=stats["mean"],
            std=stats["std"],
            batch_size=batch_size or self.config.batch_size,
            training=True,
            vocabulary=self.vocabulary,
            augmentation=augmentation,
            seed=self.config.seed,
            epoch=epoch,
            bucket_boundaries=tuple(data.bucket_boundaries),
            shuffle_buffer=data.shuffle_buffer,
            shard=shard,
            word_segments=epoch < data.curriculum_word_epochs,
            **self.dataset_options(training=True),
        )

    @property
    def crop_jitter_epochs(self) -> int:
        """Epochs over which the training windows' reach grows (0: full reach throughout)."""
        configured = self.config.data.crop_jitter_epochs
        return int(self.budget_plan.get("crop_jitter_epochs", configured))

    def plan_for_epochs(self, projected_epochs: float) -> dict:
        """With config.data.crop_jitter_ramp_below_epochs set, the windows' reach ramps over
        crop_jitter_epochs only when the run will last fewer epochs than that; a longer run
        has full reach from its third epoch on."""
        data = self.config.data
        ramp_below = data.crop_jitter_ramp_below_epochs
        configured = data.crop_jitter_epochs
        if not (ramp_below and configured):
            return {}
        ramp = int(configured) if projected_epochs < ramp_below else 0
        return {"crop_jitter_epochs": ramp}

    def dataset_options(self, training: bool) -> dict:
        """More keyword arguments of make_video_dataset (other streams): none for video alone."""
        del training
        return {}

    def transcriber(self, model, grammar: bool = False, language_model=None):
        """The in-graph frames-to-text wrapper around `model` (every decoding mode)."""

        return Transcriber(
            model,
            self.config,
            self.manifest["normalisation"],
            self.vocabulary,
            grammar=grammar,
            language_model=language_model,
        )

    def make_validator(self, model):
        """WER on the eval split of config.decode.validation_mode ("": greedy CTC when the model
        has a CTC head, else attention)."""
        split = self.config.data.eval_split
        if split not in self.manifest["splits"]:
            logging.warning("no %r split prepared: validation is skipped", split)
            return None
        transcriber = self.transcriber(model)
        mode = self.config.decode.validation_mode or (
            "ctc_greedy" if transcriber.has_ctc else "attention"
        )
        function = transcriber.functions[mode]
        files = split_files(self.prepared_dir, self.manifest, split)
        limit = self.config.eval_max_examples

        def validate() -> tuple[float, str]:
            # Streams the split from disk: validation memory does not grow with its size.
            references, hypotheses = [], []
            for batch in prepared_clip_batches(files, self.config.batch_size, limit):
                out = function(batch["frames"], batch["lengths"])
                hypotheses.extend(t.decode() for t in out["text"].numpy())
                references.extend(t.decode() for t in batch["text"].numpy())
            return word_error_rate(references, hypotheses), hypotheses[0]

        return validate

    def serving_module(self, model, language_model=None):
        """uint8 mouth frames [B, T, H, W, C] + lengths [B] -> text, scores, alignments.

        serving_default is joint CTC/attention decoding when the model has a CTC head
        (attention beam search otherwise); every mode is also its own signature, and with a
        configured grammar each mode has a `<mode>_grammar` twin. With a character language
        model, ctc_beam, attention and joint also have `<mode>_lm` twins (shallow fusion;
        inputs lm_weight and lm_length_bonus besides frames and lengths).
        """
        module = tf.Module()
        module.model = model  # at the root, as in translation exports (warm starts read it)
        module.plain = self.transcriber(model, language_model=language_model)
        signatures = {m: f.get_concrete_function() for m, f in module.plain.functions.items()}
        described = dict(module.plain.descriptions)
        if self.config.decode.grammar:
            module.grammar = self.transcriber(model, grammar=True)
            for mode, function in module.grammar.functions.items():
                signatures[f"{mode}_grammar"] = function.get_concrete_function()
                described[f"{mode}_grammar"] = module.grammar.descriptions[mode]
        default = self.config.decode.serving_default or (
            "joint" if module.plain.has_ctc else "attention"
        )
        if default not in signatures:
            raise ConfigError(
                f"decode.serving_default {default!r} is not a mode of this export; "
                f"known: {', '.join(sorted(signatures))}"
            )
        signatures["serving_default"] = signatures[default]
        described["serving_default"] = described[default]
        info = {
            "prep": self.manifest["settings"],
            "frame_shape": self.manifest["frame_shape"],
            "normalisation": self.manifest["normalisation"],
            "signatures": sorted(signatures),
            "catalogue": signature_catalogue(signatures, described),
            "serving_default": default,
        }
        if language_model is not None:
            decode = self.config.decode
            info["language_model"] = {
                "lm_weight": float(decode.lm_weight),
                "lm_length_bonus": float(decode.lm_length_bonus),
            }
        return module, signatures, info

    def evaluate(
        self,
        export_dir,
        *,
        split="test",
        inputs=None,
        references=None,
        modes=None,
        batch_size=16,
    ) -> dict:
        """WER and CER (jiwer) of each decoding signature on a prepared split, or on raw videos.

        inputs: a directory of videos (GRID, LRS layout) or a manifest file; they are prepared
        with the export's own settings, bad clips are skipped with their reason (listed in the
        report) and GRID transcripts also get per-slot accuracy.
        """
        if references:
            raise ConfigError("lip reading takes its references from the corpus, not --references")
        if inputs:
            return self._evaluate_videos(export_dir, inputs, modes, batch_size)
        read_manifest(self.prepared_dir, self.name)
        clips = read_prepared_clips(self.prepared_dir, split)
        report = evaluate_lipreading(export_dir, clips, modes, batch_size)
        report["summary"].update(model=str(export_dir), split=split)
        return report

    def _evaluate_videos(self, export_dir, videos, modes, batch_size) -> dict:
        data = self.config.data
        specs = evaluation_clips(videos, data.dataset)
        info = read_export_info(export_dir)
        settings = preparation_settings(info)
        settings.strict = False
        # A clip too short for any sentence the export can say is not scored: it would be a guess.
        shortest = info.get("shortest_clip") or shortest_clip(info)
        settings.min_frames = max(settings.min_frames, int(shortest["frames"]))
        with tempfile.TemporaryDirectory(prefix="lipseq-videos-") as scratch:
            manifest = prepare_lipreading(
                specs,
                scratch,
                settings,
                workers=data.workers,
                split_of=lambda spec: "test",
                contact_sheet_clips=0,
            )
            clips = read_prepared_clips(scratch, "test") if manifest["splits"] else []
        skipped = [s for entry in manifest["splits"].values() for s in entry["skipped"]]
        if not clips:
            raise NotPreparedError(
                f"no clip of {videos} could be prepared ({len(specs)} found; skipped by reason: "
                f"{manifest['skipped_by_reason'] or 'none'})"
            )
        report = evaluate_lipreading(export_dir, clips, modes, batch_size)
        add_slot_accuracy(report, clips)
        report["skipped"] = skipped
        report["summary"].update(
            model=str(export_dir),
            videos=str(videos),
            num_videos=len(specs),
            num_skipped=len(skipped),
            skipped_by_reason=manifest["skipped_by_reason"],
        )
        return report

    def report_lines(self, report: dict) -> list[str]:
        summary = report["summary"]
        count = summary["num_clips"]
        lines = [
            f"{name:24s} WER = {s['wer']:6.2f}  CER = {s['cer']:6.2f}  "
            f"({count} clips, {s['clips_per_second']:.1f} clips/s)"
            + (
                f"  attention in words {s['attention_in_words']['mean']:.0f}%"
                if "attention_in_words" in s
                else ""
            )
            + (
                "  slots: " + " ".join(f"{k} {v:.0f}" for k, v in s["slot_accuracy"].items())
                if "slot_accuracy" in s
                else ""
            )
            for name, s in summary["modes"].items()
        ]
        if summary.get("num_skipped"):
            lines.append(
                f"skipped {summary['num_skipped']} of {summary['num_videos']} videos: "
                f"{summary['skipped_by_reason']} (reasons per clip in the report)"
            )
        return lines


def prepared_clip_batches(files: list[str], batch_size: int, limit: int = 0) -> tf.data.Dataset:
    """Padded batches of uint8 frames [B, T, H, W, C], lengths [B] and text [B] from shards."""

    def frames_and_text(raw):
        clip = parse_clip(raw)
        return {
            "frames": clip["frames"],
            "lengths": tf.shape(clip["frames"])[0],
            "text": clip["text"],
        }

    dataset = tf.data.TFRecordDataset(files).map(frames_and_text)
    if limit:
        dataset = dataset.take(limit)
    return dataset.padded_batch(batch_size)


def read_prepared_clips(prepared_dir: str | Path, split: str, limit: int = 0) -> list[dict]:
    """id, text, uint8 frames [T, H, W, C] and word_spans ((start, end) frames of each word,
    end exclusive; empty without timings) of every clip of a prepared lip-reading split."""
    manifest = read_manifest(prepared_dir, LipreadingTask.name)
    clips = []
    for raw in tf.data.TFRecordDataset(split_files(prepared_dir, manifest, split)):
        clip = parse_clip(raw)
        clips.append(
            {
                "id": clip["id"].numpy().decode(),
                "text": clip["text"].numpy().decode(),
                "frames": clip["frames"].numpy(),
                "word_spans": list(
                    zip(
                        clip["word_start"].numpy().tolist(),
                        clip["word_end"].numpy().tolist(),
                        strict=True,
                    )
                ),
            }
        )
        if limit and len(clips) >= limit:
            break
    return clips


def evaluate_lipreading(
    export_dir, clips: list[dict], signatures=None, batch_size: int = 16
) -> dict:
    """WER and CER of each decoding signature of a lip-reading export on `clips`."""

    loaded, _ = load_export(export_dir, task=LipreadingTask.name)
    names = signatures or sorted(n for n in loaded.signatures if n != "serving_default")
    references = [clip["text"] for clip in clips]
    report = {"summary": {"num_clips": len(clips), "modes": {}}, "clips": []}
    per_clip = {clip["id"]: {"id": clip["id"], "reference": clip["text"]} for clip in clips}
    for name in names:
        function = signature(loaded, export_dir, name)
        started = time.monotonic()
        alignments = []
        hypotheses = transcribe_batches(
            lambda frames, lengths, f=function: f(frames=frames, lengths=lengths),
            [clip["frames"] for clip in clips],
            batch_size,
            alignments,
        )
        seconds = time.monotonic() - started
        report["summary"]["modes"][name] = {
            "wer": round(word_error_rate(references, hypotheses), 2),
            "cer": round(character_error_rate(references, hypotheses), 2),
            "clips_per_second": round(len(clips) / max(seconds, 1e-9), 2),
        }
        shares = [
            attention_in_words(weights, hypothesis, clip.get("word_spans") or [])
            for weights, hypothesis, clip in zip(alignments, hypotheses, clips, strict=True)
        ]
        shares = [share for share in shares if share is not None]
        if shares:
            # Attention that reads the frames, not the encoder's end states (BUILD.md).
            report["summary"]["modes"][name]["attention_in_words"] = {
                "mean": round(float(np.mean(shares)), 2),
                "clips": len(shares),
            }
        for clip, hypothesis in zip(clips, hypotheses, strict=True):
            per_clip[clip["id"]][name] = {
                "hypothesis": hypothesis,
                "wer": round(word_error_rate([clip["text"]], [hypothesis]), 2),
            }
    report["clips"] = list(per_clip.values())
    return report


def add_slot_accuracy(report: dict, clips: list[dict]) -> None:
    """Adds per-slot word accuracy (%) to each mode when every reference is a GRID sentence."""

    try:
        for clip in clips:
            grid_sentence_id(clip["text"].split())
    except ValueError:
        return
    hypotheses = {c["id"]: c for c in report["clips"]}
    for mode, scores in report["summary"]["modes"].items():
        right = dict.fromkeys(GRID_GRAMMAR, 0)
        for clip in clips:
            said = hypotheses[clip["id"]][mode]["hypothesis"].split()
            # Every reference is a six-word GRID sentence (checked above).
            for index, (slot, word) in enumerate(
                zip(GRID_GRAMMAR, clip["text"].split(), strict=True)
            ):
                right[slot] += index < len(said) and said[index] == word
        scores["slot_accuracy"] = {k: round(100.0 * v / len(clips), 2) for k, v in right.items()}


def plot_clip_roi(prepared_dir: str | Path, clip_id: str) -> Path:
    """Plots the stored ROI trajectory of one prepared clip to <prepared_dir>/roi_<id>.png."""

    manifest = read_manifest(prepared_dir, LipreadingTask.name)
    for split in manifest["splits"]:
        for raw in tf.data.TFRecordDataset(split_files(prepared_dir, manifest, split)):
            clip = parse_clip(raw)
            if clip["id"].numpy().decode() == clip_id:
                safe = clip_id.replace("/", "_")
                return plot_roi_trajectory(
                    np.asarray(clip["roi_boxes"].numpy()),
                    clip["roi_confidence"].numpy(),
                    Path(prepared_dir) / f"roi_{safe}.png",
                    clip_id,
                )
    raise ValueError(f"clip {clip_id!r} is not in {prepared_dir} (skipped, or a wrong id)")
