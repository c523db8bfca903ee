"""Word times for every decoding mode, and subtitles (SRT, WebVTT) from timed words.

    words = timed_words(export, text, out["alignments"], crops, fps)

Attention modes return their alignment. The CTC searches return none, and the frames where
a CTC path emits a word's letters are no guide to when it is spoken: the shipped release's
bidirectional encoder emits a GRID sentence's first word at the clip's first frames, a
median 0.58 s from the .align file's times (0.02 s for attention's word centres). So for
them the export's own attention decoder is run once over their text (teacher forcing, no
search), and the words are timed from its attention as for the attention modes.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
from absl import logging

from data_prep.characters import BOS_ID, CharVocabulary
from data_prep.errors import ConfigError

SUBTITLE_FORMATS = ("srt", "vtt")


def word_times(text: str, alignment: np.ndarray, fps: float, num_frames: int) -> list[dict] | None:
    """Each word's start and end (seconds) from attention weights [output steps, frames].

    A character is placed at the frame its attention weights centre on (their mean); a word
    spans its characters' frames, one frame wide at least, and starts no earlier than the
    word before it (the words are spoken in order even where attention wanders). None
    without weights (timed_words supplies them for the CTC modes).
    """
    if not len(alignment) or not text:
        return None
    frames = np.arange(alignment.shape[1], dtype=np.float64)
    words, step, previous_start = [], 0, 0.0
    for word in text.split(" "):
        centres = []
        for _ in word:
            if step < len(alignment):
                weights = alignment[step].astype(np.float64)
                centres.append(float(weights @ frames / max(weights.sum(), 1e-9)))
            step += 1
        step += 1  # the space
        if word and centres:
            start = min(max(min(centres), previous_start), float(num_frames) - 1.0)
            end = min(max(max(centres), start) + 1.0, float(num_frames))
            previous_start = start
            words.append({"word": word, "start": round(start / fps, 3), "end": round(end / fps, 3)})
    return words


class ForcedAligner:
    """An export's attention over its frames for a given text, from its own model's weights.

    The model is rebuilt from the export's stored config and its weights read from the
    SavedModel's variables (the SavedModel itself keeps no callable decoder).
    """

    def __init__(self, export):
        # Late: batch's preparation workers import this module and must stay free of TensorFlow.
        import tensorflow as tf

        from models.seq2seq import build_model
        from pipelines.artifacts.exports import export_config
        from pipelines.artifacts.runs import load_initial_weights
        from pipelines.inputs.video import inference_frames

        config = export_config(export.info)
        self.vocabulary = CharVocabulary()
        model = build_model(config.model, None, self.vocabulary.size)
        load_initial_weights(model, export.export_dir)
        mean = tf.constant(export.info["normalisation"]["mean"], tf.float32)
        std = tf.constant(export.info["normalisation"]["std"], tf.float32)
        crop_size = tuple(config.data.crop_size)

        @tf.function(
            input_signature=[
                tf.TensorSpec([1, None, *export.frame_shape], tf.uint8),
                tf.TensorSpec([1, None], tf.int32),
            ]
        )
        def attend(frames, targets):
            inputs = inference_frames(frames, mean, std, crop_size)
            lengths = tf.shape(frames)[1:2]
            batch = {"inputs": inputs, "input_lengths": lengths, "targets": targets}
            return model(batch, training=False)["alignments"]

        self._attend = attend

    def __call__(self, crops: np.ndarray, text: str) -> np.ndarray:
        """Attention weights [characters + 1, frames] for `text` read from crops [T, h, w, C]."""
        targets = np.array([[BOS_ID, *self.vocabulary.encode(text)]], np.int32)
        return self._attend(crops[None], targets).numpy()[0]


_ALIGNERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ALIGNERS_LOCK = threading.Lock()


def aligner_for(export) -> ForcedAligner | None:
    """The export's ForcedAligner, built once; None for exports that are not single-stream
    lip-reading models (an audio-visual model's streams are not rebuilt here) or whose
    weights do not fit the model their config describes (their CTC words go untimed, and
    the transcript is still served)."""
    if export.info.get("task") != "lipreading":
        return None
    with _ALIGNERS_LOCK:
        if export not in _ALIGNERS:
            try:
                _ALIGNERS[export] = ForcedAligner(export)
            except ConfigError as error:
                logging.warning("%s: no word times for CTC modes: %s", export.name, error)
                _ALIGNERS[export] = None
        return _ALIGNERS[export]


def timed_words(
    export, text: str, alignment: np.ndarray, crops: np.ndarray, fps: float
) -> list[dict] | None:
    """Word times of a transcript of crops [T, h, w, C] in any mode: from the signature's own
    attention `alignment` [steps, >= T], or, where it has none (CTC), from the export's
    attention decoder forced over the text. None for an empty text or an export without one."""
    num_frames = len(crops)
    if not text or not num_frames:
        return None
    if not alignment.size:
        aligner = aligner_for(export)
        if aligner is None:
            return None
        alignment = aligner(crops, text)
    return word_times(text, alignment[:, :num_frames], fps, num_frames)


def _timestamp(seconds: float, separator: str) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"


def subtitles(words: list[dict], kind: str, words_per_cue: int = 7) -> str:
    """SRT or WebVTT text: cues of up to `words_per_cue` words at their spoken times."""
    if kind not in SUBTITLE_FORMATS:
        raise ValueError(f"unknown subtitle format {kind!r}; known: {', '.join(SUBTITLE_FORMATS)}")
    separator = "," if kind == "srt" else "."
    blocks = ["WEBVTT\n"] if kind == "vtt" else []
    for number, first in enumerate(range(0, len(words), words_per_cue), 1):
        cue = words[first : first + words_per_cue]
        start = _timestamp(cue[0]["start"], separator)
        end = _timestamp(cue[-1]["end"], separator)
        text = " ".join(w["word"] for w in cue)
        blocks.append(
            f"{number}\n{start} --> {end}\n{text}\n"
            if kind == "srt"
            else f"{start} --> {end}\n{text}\n"
        )
    return "\n".join(blocks)
