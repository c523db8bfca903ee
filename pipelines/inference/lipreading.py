"""The front door of a lip-reading export: raw video files in, text out."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from data_prep.errors import ConfigError


class VideoTranscriber:
    """Raw video files -> text with a lip-reading export, loaded once.

    The export's stored experiment config rebuilds the preparation (face detector, mouth
    tracking, crop preset, frame rate) exactly as the training data was prepared.
    """

    def __init__(
        self,
        export_dir: str | Path,
        mode: str | None = None,
        grammar: bool = False,
        modality: str | None = None,
    ):
        from data_prep.lipreading import LipreadingSettings
        from pipelines.artifacts.exports import load_export, signature

        self.export_dir = Path(export_dir)
        self.loaded, self.info = load_export(export_dir)
        modalities = self.info.get("modalities", ["video"])  # audio-visual exports list three
        if self.info["task"] not in ("lipreading", "audio_visual"):
            raise ConfigError(f"{export_dir} is a {self.info['task']!r} export, not lip reading")
        self.modality = modality or modalities[0]
        if self.modality not in modalities:
            raise ConfigError(
                f"{export_dir} reads {', '.join(modalities)}; not --modality={self.modality}"
            )
        default = self.info["serving_default"]
        if len(modalities) > 1:
            self.mode = mode or default.rsplit("_", 1)[-1]
            name = f"{self.modality}_{self.mode}"
        else:
            self.mode = mode or default
            name = self.mode
        self.signature = signature(self.loaded, export_dir, f"{name}_grammar" if grammar else name)
        self.settings = LipreadingSettings.from_config(self.info["config"]["data"])

    def __call__(self, frames, lengths, audio=None, audio_lengths=None) -> dict:
        if self.modality == "video":
            return self.signature(frames=frames, lengths=lengths)
        if self.modality == "audio":
            return self.signature(audio=audio, audio_lengths=audio_lengths)
        return self.signature(
            frames=frames, lengths=lengths, audio=audio, audio_lengths=audio_lengths
        )

    def _audio(self, video, num_frames: int, fps: float) -> tuple:
        """The video's sound aligned to its frames: float32 [1, S] and lengths [1]."""
        from data_prep.audio import align_to_video, read_audio

        samples, _ = align_to_video(read_audio(video), num_frames, fps)
        waveform = samples.astype(np.float32)[None] / 32768.0
        return tf.constant(waveform), tf.constant([waveform.shape[1]], tf.int32)

    def transcribe(self, video: str | Path) -> dict:
        """Text, score, alignments [L, T], crops [T, h, w, C] and seconds per stage of a video.

        A long or very large video is streamed and read window by window instead
        (pipelines/serving/long_video.py): then there are timed words, pieces and gaps, and
        no single score, alignment or crop array.
        """
        from data_prep.lipreading import mouth_crops
        from pipelines.inference.long_video import is_long, transcribe_long

        if is_long(video):
            return transcribe_long(video, self)
        started = time.monotonic()
        if self.modality == "audio":  # the sound alone: no face needed
            from data_prep.audio import read_audio

            samples = read_audio(video).samples.astype(np.float32)[None] / 32768.0
            crops = np.zeros((0, *self.info["frame_shape"]), np.uint8)
            audio = tf.constant(samples)
            audio_lengths = tf.constant([samples.shape[1]], tf.int32)
        else:
            crops, _, clip = mouth_crops(video, self.settings)
            audio = audio_lengths = None
        if self.modality == "audio_visual":
            audio, audio_lengths = self._audio(video, len(crops), float(clip.fps))
        prepared = time.monotonic()
        out = self(
            tf.constant(crops[None]), tf.constant([len(crops)], tf.int32), audio, audio_lengths
        )
        text = out["text"].numpy()[0].decode()
        return {
            "text": text,
            "score": float(out["scores"].numpy()[0]),
            "alignments": out["alignments"].numpy()[0],
            "crops": crops,
            "seconds": {
                "prepare": round(prepared - started, 3),
                "model": round(time.monotonic() - prepared, 3),
            },
        }


def transcribe_video(
    video: str | Path,
    export_dir: str | Path,
    mode: str | None = None,
    grammar: bool = False,
    modality: str | None = None,
) -> dict:
    """`VideoTranscriber(...).transcribe(video)`, with the model's load time in the timings."""
    started = time.monotonic()
    transcriber = VideoTranscriber(export_dir, mode, grammar, modality)
    load_seconds = time.monotonic() - started
    result = transcriber.transcribe(video)
    result["seconds"] = {"load_model": round(load_seconds, 3), **result["seconds"]}
    return result
