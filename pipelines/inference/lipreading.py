"""The front door of a lip-reading or audio-visual export: open it once, prepare raw videos
exactly as its training data was prepared, and run any of its signatures by mode.

    export = LipReadingExport("grid_s1")                   # a path or a shipped release
    entry = export.entry(mode="ctc_greedy", grammar=False)  # looked up in the catalogue
    prepared = export.prepare("face.mp4")                   # data_prep's one clip core
    out = export.run(export.function(entry), prepared)      # text, scores, alignments

`transcribe`, batch transcription, the HTTP service and `evaluate --videos` all come in
here; VideoTranscriber binds one signature for the command's and batch's readers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from data_prep.audio import align_to_video, read_audio
from data_prep.characters import CharVocabulary
from data_prep.errors import ConfigError
from data_prep.lipreading import LipreadingSettings, open_clip, prepare_video
from data_prep.video import VideoSource
from models.ctc import frames_to_finish
from pipelines.artifacts.exports import (
    SignatureEntry,
    export_config,
    load_export,
    read_catalogue,
    resolve_export,
    signature,
)
from pipelines.inference.long_video import is_long, transcribe_long
from pipelines.signatures.transcriber import grammar_for


def preparation_settings(info: dict[str, Any]) -> LipreadingSettings:
    """How an export's training clips were prepared: the prepared data's own settings, which
    export stores as info["prep"]; exports without them fall back to their config's data."""
    stored = info.get("prep") or info["config"]["data"]
    return LipreadingSettings.from_config(stored)


def shortest_clip(info: dict[str, Any], frames_per_step: int = 1) -> dict[str, int]:
    """The fewest frames from which an export could give its shortest acceptable output:
    {"frames", "labels" (CTC steps of that output), "frames_per_step" (of its encoder)}.

    export stores it in lipseq.json; for an export made before, it is worked out here from
    the stored config, at one encoder step a frame (every front-end then kept one a frame).
    """
    # The shortest output is the grammar's shortest sentence (GRID: six words, 20 CTC steps)
    # or, without a grammar, one character; it needs an encoder step for each label and a
    # blank between repeated ones (the CTC bound, held to by attention-only models too: no
    # clip they learnt from was shorter), and never fewer frames than the prepared clips'
    # min_frames. Under that, whatever the model said would be a guess, so it is refused.
    grammar = grammar_for(export_config(info), CharVocabulary())
    labels = int(frames_to_finish(*grammar)[0]) if grammar else 1
    frames = max(labels * frames_per_step, preparation_settings(info).min_frames)
    return {"frames": frames, "labels": labels, "frames_per_step": frames_per_step}


def encoder_frames_per_step(model, probe: int = 32) -> int:
    """Video frames per encoder step of a model's video front-end (an ensemble's first
    member's), measured on a probe clip of zeros."""
    model = getattr(model, "members", [model])[0]
    frontend = getattr(model, "frontend_video", None) or model.frontend
    frames = tf.zeros([1, probe, *frontend.batch_input_shape[2:]])
    _, steps = frontend(frames, tf.constant([probe]))
    return -(-probe // max(1, int(steps[0])))


@dataclass
class PreparedInput:
    """A video made ready for a signature: mouth crops and/or the sound aligned to them."""

    crops: np.ndarray  # uint8 [T, h, w, C]; T = 0 when only the sound is read
    fps: float
    track: Any = None  # data_prep.mouth.MouthTrack, None for the sound alone
    audio: np.ndarray | None = None  # float32 [S] in [-1, 1], sample 0 at frame 0
    seconds: float = 0.0


class LipReadingExport:
    """One export that reads faces (and sound), loaded once and shared by every caller.

    Signature calls are serialised: on a few cores concurrent calls only share the same
    threads, and one at a time keeps each request's latency predictable.
    """

    def __init__(self, export_dir: str | Path):
        self.name = str(export_dir)
        self.loaded, self.info = load_export(export_dir)
        self.export_dir = resolve_export(export_dir)
        if "frame_shape" not in self.info:
            raise ConfigError(f"{export_dir} is a {self.info['task']!r} export, not lip reading")
        self.settings = preparation_settings(self.info)
        self.shortest = self.info.get("shortest_clip") or shortest_clip(self.info)
        self.shortest_frames = int(self.shortest["frames"])
        self.catalogue = read_catalogue(self.info)
        self.frame_shape = tuple(int(x) for x in self.info["frame_shape"])
        self.modalities = tuple(self.info.get("modalities") or ("video",))
        self.default = self.catalogue["serving_default"]
        self._functions: dict[str, Any] = {}  # by signature name, with the export's LM weights
        self._lock = threading.Lock()

    def _entries(self, modality: str) -> list[SignatureEntry]:
        return [
            e
            for name, e in sorted(self.catalogue.items())
            if name != "serving_default" and e.modality == modality
        ]

    def modes(self, modality: str | None = None) -> list[str]:
        """The modes of a modality (the default one's when None), fused ones as *_lm."""
        entries = self._entries(modality or self.default.modality)
        return sorted({e.mode_name for e in entries if not e.grammar})

    def grammar_modes(self, modality: str | None = None) -> list[str]:
        """The modes that also have a grammar-restricted twin."""
        entries = self._entries(modality or self.default.modality)
        return sorted({e.mode_name for e in entries if e.grammar})

    def entry(
        self, mode: str | None = None, grammar: bool = False, modality: str | None = None
    ) -> SignatureEntry:
        """The catalogue entry of a mode (the export's default when None); ConfigError names
        what the export has instead."""
        modality = modality or self.default.modality
        if modality not in self.modalities:
            raise ConfigError(
                f"{self.name} reads {', '.join(self.modalities)}; not --modality={modality}"
            )
        mode = mode or self.default.mode_name
        for entry in self._entries(modality):
            if entry.mode_name == mode and entry.grammar == grammar:
                return entry
        twins = self.grammar_modes(modality) if grammar else self.modes(modality)
        kind = "grammar-restricted modes" if grammar else "modes"
        raise ConfigError(
            f"{self.name} has no {mode!r} for {modality}; its {kind}: {', '.join(twins) or 'none'}"
        )

    def function(self, entry: SignatureEntry, **lm_options):
        """The callable of a catalogue entry; lm_options set a fused mode's weights (made
        afresh: a request's own weights), else it is made once and kept."""
        if any(value is not None for value in lm_options.values()):
            return signature(self.loaded, self.export_dir, entry.name, self.info, **lm_options)
        if entry.name not in self._functions:
            self._functions[entry.name] = signature(
                self.loaded, self.export_dir, entry.name, self.info
            )
        return self._functions[entry.name]

    def prepare(
        self, video: str | Path | VideoSource, modality: str = "video", longest: int | None = None
    ) -> PreparedInput:
        """A video (a path, or a VideoSource already open) through the clip core with this
        export's settings, frames and sound from one opening of the file (ClipSkipped with the
        reason when it cannot be read, too_short under `shortest_frames`)."""
        started = time.monotonic()
        if modality == "audio":  # the sound alone: no face needed, a sound file will do
            samples = read_audio(video).samples.astype(np.float32) / 32768.0
            crops = np.zeros((0, *self.frame_shape), np.uint8)
            prepared = PreparedInput(crops, self.settings.target_fps, audio=samples)
        else:
            with open_clip(video) as source:
                clip = prepare_video(
                    source, self.settings, longest=longest, shortest=self.shortest_frames
                )
                fps = float(clip.clip.fps)
                prepared = PreparedInput(clip.crops, fps, track=clip.track)
                if modality == "audio_visual":
                    samples, _ = align_to_video(read_audio(source), len(clip.crops), fps)
                    prepared.audio = samples.astype(np.float32) / 32768.0
        prepared.seconds = time.monotonic() - started
        return prepared

    def run(self, function, prepared: PreparedInput) -> dict[str, np.ndarray]:
        """One prepared video through a signature: its outputs for that one video."""
        inputs = {}
        if len(prepared.crops):
            inputs["frames"] = tf.constant(prepared.crops[None])
            inputs["lengths"] = tf.constant([len(prepared.crops)], tf.int32)
        if prepared.audio is not None:
            inputs["audio"] = tf.constant(prepared.audio[None])
            inputs["audio_lengths"] = tf.constant([len(prepared.audio)], tf.int32)
        with self._lock:
            out = function(**inputs)
        return {key: value.numpy()[0] for key, value in out.items()}

    def warm_up(self) -> None:
        """One call of the default signature, so the first request pays no start-up cost."""
        inputs = self.default.inputs
        crops = np.zeros((8 if "frames" in inputs else 0, *self.frame_shape), np.uint8)
        audio = np.zeros(8 * 640, np.float32) if "audio" in inputs else None
        self.run(self.function(self.default), PreparedInput(crops, 25.0, audio=audio))


class VideoTranscriber:
    """One signature of a lip-reading export bound for reading raw video files."""

    def __init__(
        self,
        export: str | Path | LipReadingExport,
        mode: str | None = None,
        grammar: bool = False,
        modality: str | None = None,
    ):
        opened = isinstance(export, LipReadingExport)
        self.export = export if opened else LipReadingExport(export)
        self.entry = self.export.entry(mode, grammar, modality)
        self.modality, self.mode = self.entry.modality, self.entry.mode_name
        self.signature = self.export.function(self.entry)
        self.settings, self.info = self.export.settings, self.export.info

    def __call__(self, frames, lengths, audio=None, audio_lengths=None) -> dict:
        """The bound signature on batched inputs (frames [B, T, h, w, C] uint8 and lengths;
        audio [B, S] and audio_lengths where the modality reads sound)."""
        given = {"frames": frames, "lengths": lengths}
        given.update(audio=audio, audio_lengths=audio_lengths)
        return self.signature(**{key: given[key] for key in self.entry.inputs if key in given})

    def transcribe(self, video: str | Path) -> dict:
        """Text, score, alignments [L, T], crops [T, h, w, C] and seconds per stage of a video.

        A long or very large video is streamed and read window by window instead
        (pipelines/inference/long_video.py): then there are timed words, pieces and gaps, and
        no single score, alignment or crop array.
        """
        if self.modality == "audio":
            prepared = self.export.prepare(video, self.modality)
        else:
            with open_clip(video) as source:
                if is_long(source):
                    return transcribe_long(source, self)
                prepared = self.export.prepare(source, self.modality)
        started = time.monotonic()
        out = self.export.run(self.signature, prepared)
        return {
            "text": out["text"].decode(),
            "score": float(out["scores"]),
            "alignments": out["alignments"],
            "crops": prepared.crops,
            "seconds": {
                "prepare": round(prepared.seconds, 3),
                "model": round(time.monotonic() - started, 3),
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
