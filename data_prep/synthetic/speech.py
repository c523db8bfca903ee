"""A sound track for the synthetic talking faces: every character has its own sound.

Each spoken character is a tone pair (two "formants" unique to the character) under a smooth
envelope for the frames it is said in, fricatives add hiss, and spaces are silent, so the
audio follows the same text as the mouth and tells apart characters that share a mouth shape
(b, m, p), as real speech does. Deterministic for a given clip and seed.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

from data_prep.atomic import atomic_path

SAMPLE_RATE = 16000
_SOUNDING = "abcdefghijklmnopqrstuvwxyz0123456789'"
_FRICATIVES = set("fhsvxzcj")


def character_formants(ch: str) -> tuple[float, float]:
    """The two frequencies (Hz) of a character's sound; distinct for every character."""
    index = _SOUNDING.index(ch.lower())
    return 250.0 + 45.0 * index, 1300.0 + 50.0 * ((index * 7) % len(_SOUNDING))


def synthesize_speech(clip, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """int16 samples [round(T / fps * sample_rate)] of the clip's characters, in time."""
    rng = np.random.default_rng(seed)
    total = int(round(clip.num_frames / clip.fps * sample_rate))
    audio = np.zeros(total, np.float64)
    for start, end, ch in clip.char_spans:
        first = int(start / clip.fps * sample_rate)
        last = min(int(end / clip.fps * sample_rate), total)
        if last <= first:
            continue
        t = np.arange(last - first) / sample_rate
        low, high = character_formants(ch)
        sound = 0.6 * np.sin(2 * np.pi * low * t) + 0.4 * np.sin(2 * np.pi * high * t)
        if ch in _FRICATIVES:
            sound += 0.3 * rng.standard_normal(len(t))
        audio[first:last] += 0.25 * np.hanning(len(t)) * sound
    audio += 0.002 * rng.standard_normal(total)  # a room's noise floor
    return np.clip(audio * 32767, -32768, 32767).astype(np.int16)


def write_wav(samples: np.ndarray, path: str | Path, sample_rate: int = SAMPLE_RATE) -> Path:
    """Mono int16 WAV, written atomically."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(np.ascontiguousarray(samples, "<i2").tobytes())
    path = Path(path)
    with atomic_path(path, suffix=".wav") as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path
