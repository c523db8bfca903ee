"""Audio-visual speech recognition (Watch, Listen, Attend and Spell) on prepared clips with audio.

The data are lip-reading clips prepared with `config.data.audio=True` (mouth crops plus the
aligned 16 kHz track); the model is models.multistream's, over `config.model.streams`; the
export has every decoding mode for each modality: `<modality>_<mode>` with modality
audio_visual, video or audio (serving_default: audio_visual joint decoding).
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from data_prep.errors import NotPreparedError
from data_prep.records import parse_clip, read_manifest, split_files
from models.multistream import build_multistream_model
from pipelines.scoring import word_error_rate
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
        from pipelines.inputs.video import AudioOptions

        data = self.config.data
        if not training or data.get("noise", "none") == "none":
            return {"audio": AudioOptions()}
        bank = self.babble_bank() if data.noise == "babble" else ()
        return {
            "audio": AudioOptions(
                noise=data.noise, snr_range_db=tuple(data.snr_range_db), babble_bank=bank
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

    def transcriber(self, model, grammar: bool = False):
        from pipelines.serving.av_transcriber import AudioVisualTranscriber

        return AudioVisualTranscriber(
            model,
            self.config,
            self.manifest["normalisation"],
            self.manifest["frame_shape"],
            self.vocabulary,
            grammar=grammar,
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

    def serving_module(self, model):
        """`<modality>_<mode>` for every modality and mode (joint also with the grammar when
        one is configured); serving_default is audio_visual_joint (attention without CTC)."""
        from pipelines.serving.av_transcriber import MODALITIES

        module = tf.Module()
        module.model = model
        module.plain = self.transcriber(model)
        signatures = {}
        for modality in MODALITIES:
            for mode, function in module.plain.modality_functions[modality].items():
                signatures[f"{modality}_{mode}"] = function.get_concrete_function()
        default_mode = "joint" if module.plain.has_ctc else "attention"
        if self.config.decode.get("grammar"):
            module.grammar = self.transcriber(model, grammar=True)
            for modality in MODALITIES:
                function = module.grammar.modality_functions[modality][default_mode]
                signatures[f"{modality}_{default_mode}_grammar"] = function.get_concrete_function()
        signatures["serving_default"] = signatures[f"audio_visual_{default_mode}"]
        info = {
            "prep": self.manifest["settings"],
            "frame_shape": self.manifest["frame_shape"],
            "normalisation": self.manifest["normalisation"],
            "audio": self.manifest["audio"],
            "modalities": list(MODALITIES),
            "signatures": sorted(signatures),
            "serving_default": f"audio_visual_{default_mode}",
        }
        return module, signatures, info


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
