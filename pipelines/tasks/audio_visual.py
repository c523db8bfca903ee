"""Audio-visual speech recognition (Watch, Listen, Attend and Spell) on prepared clips with audio.

The data are lip-reading clips prepared with `config.data.audio=True` (mouth crops plus the
aligned 16 kHz track); the model is models.multistream's, over `config.model.streams`; the
export has every decoding mode for each modality: `<modality>_<mode>` with modality
audio_visual, video or audio (serving_default: audio_visual joint decoding).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import tensorflow as tf

from data_prep.errors import ConfigError, NotPreparedError
from data_prep.records import parse_clip, read_manifest, split_files
from models.multistream import build_multistream_model
from pipelines.artifacts.exports import load_export, signature_catalogue
from pipelines.inputs.audio import babble, mix_at_snr, white_noise
from pipelines.inputs.video import AudioOptions
from pipelines.plots import plot_wer_against_snr
from pipelines.scoring import character_error_rate, word_error_rate
from pipelines.signatures.audio_visual import MODALITIES, AudioVisualTranscriber
from pipelines.tasks.lipreading import LipreadingTask

BABBLE_BANK_CLIPS = 48


class AudioVisualTask(LipreadingTask):
    """Mouth frames and sound -> one encoder and one attention per stream -> characters."""

    name = "audio_visual"

    @functools.cached_property
    def manifest(self) -> dict:
        manifest = read_manifest(self.prepared_dir, LipreadingTask.name)
        if not manifest.get("audio"):
            raise NotPreparedError(
                f"{self.prepared_dir} has no audio: prepare it with --config.data.audio=True"
            )
        return manifest

    def build_model(self):
        model_config = self.config.model
        with model_config.unlocked():
            model_config.frame_shape = self.frame_shape
        return build_multistream_model(model_config, self.vocabulary.size)

    def batch_signature(self) -> dict:
        signature = super().batch_signature()
        signature["inputs"] = {
            "video": signature["inputs"],
            "audio": tf.TensorSpec([None, None], tf.float32),
        }
        signature["input_lengths"] = {
            "video": signature["input_lengths"],
            "audio": tf.TensorSpec([None], tf.int32),
        }
        return signature

    def dataset_options(self, training: bool) -> dict:
        data = self.config.data
        if not training or data.noise == "none":
            return {"audio": AudioOptions()}
        bank = self.babble_bank() if data.noise == "babble" else ()
        return {
            "audio": AudioOptions(
                noise=data.noise,
                snr_range_db=tuple(data.snr_range_db),
                noise_fraction=data.noise_fraction,
                babble_bank=bank,
            )
        }

    def babble_bank(self, clips: int = BABBLE_BANK_CLIPS) -> tuple:
        """The audio of the first training clips (float32): the voices babble is made of; never
        a validation or test clip's, so a scored clip is never mixed with itself."""
        files = split_files(self.prepared_dir, self.manifest, self.config.data.train_split)
        bank = []
        for raw in tf.data.TFRecordDataset(files).take(clips):
            samples = parse_clip(raw)["audio"].numpy()
            if len(samples):
                bank.append(samples.astype(np.float32) / 32768.0)
        return tuple(bank)

    def transcriber(self, model, grammar: bool = False, language_model=None):
        return AudioVisualTranscriber(
            model,
            self.config,
            self.manifest["normalisation"],
            self.manifest["frame_shape"],
            self.vocabulary,
            grammar=grammar,
            language_model=language_model,
        )

    def make_validator(self, model):
        """Greedy CTC WER of both streams together, clean audio, on the evaluation split."""
        split = self.config.data.eval_split
        if split not in self.manifest["splits"]:
            return None
        function = self.transcriber(model).modality_functions["audio_visual"]["ctc_greedy"]
        files = split_files(self.prepared_dir, self.manifest, split)
        limit = self.config.eval_max_examples

        def validate() -> tuple[float, str]:
            references, hypotheses = [], []
            for batch in clip_batches_with_audio(files, self.config.batch_size, limit):
                out = function(
                    batch["frames"], batch["lengths"], batch["audio"], batch["audio_lengths"]
                )
                hypotheses.extend(t.decode() for t in out["text"].numpy())
                references.extend(t.decode() for t in batch["text"].numpy())
            return word_error_rate(references, hypotheses), hypotheses[0]

        return validate

    def serving_module(self, model, language_model=None):
        """`<modality>_<mode>` for every modality and mode (joint also with the grammar when
        one is configured); serving_default is audio_visual_joint (attention without CTC)."""
        if language_model is not None:
            raise ConfigError("audio-visual exports do not fuse a language model yet")

        module = tf.Module()
        module.model = model
        module.plain = self.transcriber(model)
        signatures, described = {}, {}
        for modality in MODALITIES:
            for mode, function in module.plain.modality_functions[modality].items():
                signatures[f"{modality}_{mode}"] = function.get_concrete_function()
                described[f"{modality}_{mode}"] = {"modality": modality, "mode": mode}
        default_mode = self.config.decode.serving_default or (
            "joint" if module.plain.has_ctc else "attention"
        )
        if f"audio_visual_{default_mode}" not in signatures:
            raise ConfigError(
                f"decode.serving_default {default_mode!r} is not a mode of this export; known: "
                f"{', '.join(module.plain.available_modes())}"
            )
        if self.config.decode.grammar:
            module.grammar = self.transcriber(model, grammar=True)
            for modality in MODALITIES:
                function = module.grammar.modality_functions[modality][default_mode]
                name = f"{modality}_{default_mode}_grammar"
                signatures[name] = function.get_concrete_function()
                described[name] = {"modality": modality, "mode": default_mode, "grammar": True}
        default = f"audio_visual_{default_mode}"
        signatures["serving_default"] = signatures[default]
        described["serving_default"] = described[default]
        info = {
            "prep": self.manifest["settings"],
            "frame_shape": self.manifest["frame_shape"],
            "normalisation": self.manifest["normalisation"],
            "audio": self.manifest["audio"],
            "modalities": list(MODALITIES),
            "signatures": sorted(signatures),
            "catalogue": signature_catalogue(signatures, described),
            "serving_default": default,
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
        snr=None,
        noise="babble",
    ) -> dict:
        """WER and CER per modality, decoding mode and SNR on a prepared split.

        snr: labels such as ["clean", "10", "0", "-5"] (default clean only); noise: babble
        (made of training clips' audio, never a scored clip's) or white. The video-only
        figures do not depend on the sound and are computed once. Draws WER against SNR
        (joint decoding, else the first mode) beside the export as eval_<split>_snr.png.
        """

        if inputs or references:
            raise ConfigError("audio-visual evaluation scores a prepared split (no --inputs)")
        if noise not in ("babble", "white"):
            raise ConfigError(f"unknown noise {noise!r}; known: babble, white")
        snrs = [str(s) for s in (snr or ["clean"])]
        for label in snrs:
            if label != "clean":
                try:
                    float(label)
                except ValueError:
                    raise ConfigError(f"--snr takes clean or numbers (dB), got {label!r}") from None
        modes = modes or ["ctc_greedy", "joint"]
        loaded, _ = load_export(export_dir, task=self.name)
        clips = read_clips_with_audio(self.prepared_dir, self.manifest, split)
        references_text = [clip["text"] for clip in clips]
        bank = self.babble_bank() if noise == "babble" else ()
        table, rows = {}, {}
        for snr_index, label in enumerate(snrs):
            audio = noisy_copies(clips, label, noise, bank, seed=snr_index)
            for modality in MODALITIES:
                if modality == "video" and snr_index > 0:
                    for mode in modes:
                        table[modality][mode][label] = table[modality][mode][snrs[0]]
                    continue
                for mode in modes:
                    signature = loaded.signatures[f"{modality}_{mode}"]
                    hypotheses = _run_modality(signature, modality, clips, audio, batch_size)
                    scores = {
                        "wer": round(word_error_rate(references_text, hypotheses), 2),
                        "cer": round(character_error_rate(references_text, hypotheses), 2),
                    }
                    table.setdefault(modality, {}).setdefault(mode, {})[label] = scores
                    rows[f"{modality}/{mode}/{label}"] = hypotheses
        drawn = "joint" if "joint" in modes else modes[0]  # CTC modes read one stream only
        plot = plot_wer_against_snr(
            {m: {s: v["wer"] for s, v in table[m][drawn].items()} for m in MODALITIES},
            Path(export_dir) / f"eval_{split}_snr.png",
            f"{drawn}, {noise} noise, {len(clips)} clips",
        )
        per_clip = [
            {
                "id": clip["id"],
                "reference": clip["text"],
                **{key: texts[i] for key, texts in rows.items()},
            }
            for i, clip in enumerate(clips)
        ]
        summary = {
            "model": str(export_dir),
            "split": split,
            "num_clips": len(clips),
            "noise": noise,
            "snr": snrs,
            "table": table,
            "plot": str(plot),
        }
        return {"summary": summary, "clips": per_clip}

    def report_lines(self, report: dict) -> list[str]:
        summary = report["summary"]
        lines = [
            f"{summary['num_clips']} clips of {summary['split']}; {summary['noise']} noise; "
            "WER / CER (%) by SNR"
        ]
        header = "  ".join(f"{label:>13s}" for label in summary["snr"])
        lines.append(f"{'':26s}{header}")
        for modality, by_mode in summary["table"].items():
            for mode, by_snr in by_mode.items():
                cells = "  ".join(
                    f"{by_snr[s]['wer']:6.2f}/{by_snr[s]['cer']:6.2f}" for s in summary["snr"]
                )
                lines.append(f"{modality + ' ' + mode:26s}{cells}")
        lines.append(f"plot: {summary['plot']}")
        return lines


def clip_batches_with_audio(files: list[str], batch_size: int, limit: int = 0):
    """Padded batches of frames, lengths, audio (float32 in [-1, 1]), audio_lengths and text."""

    def unpack(raw):
        clip = parse_clip(raw)
        audio = tf.cast(clip["audio"], tf.float32) / 32768.0
        return {
            "frames": clip["frames"],
            "lengths": tf.shape(clip["frames"])[0],
            "audio": audio,
            "audio_lengths": tf.shape(audio)[0],
            "text": clip["text"],
        }

    dataset = tf.data.TFRecordDataset(files).map(unpack)
    if limit:
        dataset = dataset.take(limit)
    return dataset.padded_batch(batch_size)


def read_clips_with_audio(prepared_dir, manifest: dict, split: str) -> list[dict]:
    """id, text, uint8 frames [T, H, W, C] and float32 audio [S] of a prepared split's clips."""
    clips = []
    for raw in tf.data.TFRecordDataset(split_files(prepared_dir, manifest, split)):
        clip = parse_clip(raw)
        clips.append(
            {
                "id": clip["id"].numpy().decode(),
                "text": clip["text"].numpy().decode(),
                "frames": clip["frames"].numpy(),
                "audio": clip["audio"].numpy().astype(np.float32) / 32768.0,
            }
        )
    return clips


def noisy_copies(clips: list[dict], snr, noise: str, bank: tuple, seed: int = 0) -> list:
    """Each clip's audio with `noise` (babble from `bank`, or white) at `snr` dB; the clean
    audio for snr "clean". The same seed gives the same noise, so modes compare fairly."""

    if snr == "clean":
        return [clip["audio"] for clip in clips]
    padded = None
    if noise == "babble":
        longest = max(len(voice) for voice in bank)
        padded = np.zeros((len(bank), longest), np.float32)
        for row, voice in enumerate(bank):
            padded[row, : len(voice)] = voice
    noisy = []
    for index, clip in enumerate(clips):
        length = len(clip["audio"])
        stateless = tf.constant([seed, index], tf.int32)
        if noise == "babble":
            added = babble(padded, length, stateless)
        else:
            added = white_noise(length, stateless)
        noisy.append(mix_at_snr(clip["audio"], added, float(snr)).numpy())
    return noisy


def _run_modality(signature, modality: str, clips: list[dict], audio: list, batch_size: int):
    """Texts of one modality's signature over clips (frames) and their (noisy) audio."""
    texts = []
    for start in range(0, len(clips), batch_size):
        chunk = range(start, min(start + batch_size, len(clips)))
        arguments = {}
        if modality in ("video", "audio_visual"):
            frames = [clips[i]["frames"] for i in chunk]
            padded = np.zeros((len(frames), max(map(len, frames)), *frames[0].shape[1:]), np.uint8)
            for row, clip_frames in enumerate(frames):
                padded[row, : len(clip_frames)] = clip_frames
            arguments.update(frames=padded, lengths=np.array([len(f) for f in frames], np.int32))
        if modality in ("audio", "audio_visual"):
            waves = [audio[i] for i in chunk]
            padded = np.zeros((len(waves), max(map(len, waves))), np.float32)
            for row, wave in enumerate(waves):
                padded[row, : len(wave)] = wave
            arguments.update(
                audio=padded, audio_lengths=np.array([len(w) for w in waves], np.int32)
            )
        out = signature(**{k: tf.constant(v) for k, v in arguments.items()})
        texts.extend(t.decode() for t in out["text"].numpy())
    return texts
