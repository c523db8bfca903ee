"""Synthetic talking faces: drawn faces whose mouth follows the text, for tests and the demo.

Each character of the text maps to a viseme class with a mouth opening, width and roundness
(silence; bilabial b/m/p; labiodental f/v; alveolar for the other consonants, digits and the
apostrophe; spread e/i/y; open a/h; rounded o/q/u/w). The mouth interpolates smoothly between
consecutive characters, 2 to 4 frames per character, and is closed for the silences at the
start and end. The head moves (translation, scale, a slight roll), the lighting drifts (gain,
offset and a linear gradient) and every frame gets sensor noise. The face is drawn with the
luminance structure OpenCV's default Haar frontal-face cascade keys on (dark eye band and
brows, brighter nose bridge and forehead, darker hair and background), so detection runs the
same code path as on real video.

Units: the face is drawn in face-local coordinates where 1 is the half-width of the face oval
and y points down; a per-frame similarity transform maps them to pixels. Ground truth per
frame: the lips' bounding box and the face oval's bounding box, both (x0, y0, x1, y1) pixels.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from data_prep.atomic import atomic_path, write_text_atomic
from data_prep.corpora.grid import GRID_GRAMMAR, grid_sentence_id
from data_prep.synthetic.speech import synthesize_speech, write_wav

FPS = 25.0
FRAME_SIZE = (360, 288)
FACE_ASPECT = 1.3
MOUTH_Y = 0.62
SHIFT = 4
SUBPIXEL = 1 << SHIFT


@dataclass(frozen=True)
class Viseme:
    """A mouth shape: inner opening (face half-widths), width multiplier, roundness in [0, 1]."""

    name: str
    opening: float
    width: float
    roundness: float


VISEMES: dict[str, Viseme] = {
    v.name: v
    for v in (
        Viseme("silence", 0.0, 1.0, 0.0),
        Viseme("bilabial", 0.0, 0.92, 0.0),
        Viseme("labiodental", 0.05, 1.02, 0.1),
        Viseme("alveolar", 0.12, 1.0, 0.2),
        Viseme("spread", 0.17, 1.16, 0.0),
        Viseme("open", 0.34, 1.06, 0.35),
        Viseme("rounded", 0.26, 0.68, 1.0),
    )
}

_VISEME_LETTERS = {
    "silence": " ",
    "bilabial": "bmp",
    "labiodental": "fv",
    "alveolar": "cdgjklnrstxz0123456789'",
    "spread": "eiy",
    "open": "ah",
    "rounded": "oquw",
}
_CHAR_VISEME = {ch: name for name, chars in _VISEME_LETTERS.items() for ch in chars}


def char_to_viseme(ch: str) -> Viseme:
    """The viseme of one character (a-z in either case, 0-9, apostrophe, whitespace)."""
    key = " " if ch.isspace() else ch.lower()
    try:
        return VISEMES[_CHAR_VISEME[key]]
    except KeyError:
        raise ValueError(f"no viseme for character {ch!r}") from None


@dataclass
class SyntheticClip:
    """A rendered clip: frames uint8 [T,H,W,3] RGB, boxes float32 [T,4] as (x0, y0, x1, y1).

    `words` holds (start_frame, end_frame, word) with the end exclusive; `mouth_opening` is
    the inner lip gap per frame, float32 [T], in face half-widths; `char_spans` holds
    (start, end, character) of every spoken character in frames (floats), for its sound.
    """

    frames: np.ndarray
    mouth_boxes: np.ndarray
    face_boxes: np.ndarray
    text: str
    fps: float
    words: list[tuple[int, int, str]]
    mouth_opening: np.ndarray
    char_spans: list[tuple[float, float, str]] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return int(self.frames.shape[0])


@dataclass(frozen=True)
class _Look:
    """Per-clip appearance: colours (RGB floats) and proportions."""

    skin: np.ndarray
    hair: np.ndarray
    lips: np.ndarray
    shirt: np.ndarray
    background: np.ndarray
    iris: np.ndarray
    brow_thickness: float
    hair_drop: float


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """3x^2 - 2x^3 on [0, 1]: an ease-in-out weight."""
    return x * x * (3.0 - 2.0 * x)


def _timeline(
    text: str, rng: np.random.Generator, fps: float
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, str]], int, list]:
    """Keyframe times and viseme parameters [K,3], word spans, the frame count and each
    character's (start, end, character) in frames."""
    rate = fps / FPS
    lead = rng.uniform(5, 9) * rate
    trail = rng.uniform(5, 9) * rate
    durations = rng.uniform(2.0, 4.0, size=len(text)) * rate
    for i, ch in enumerate(text):
        if ch.isspace():
            durations[i] *= 0.5
    starts = lead + np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    centres = starts + durations / 2
    total = lead + float(durations.sum()) + trail
    num_frames = max(1, int(np.ceil(total)))

    silence = VISEMES["silence"]
    rest = (silence.opening, silence.width, silence.roundness)
    times = [0.0, max(lead - 1.0, 0.0)]
    params = [rest, rest]
    for ch, t in zip(text, centres, strict=True):
        v = char_to_viseme(ch)
        times.append(float(t))
        params.append((v.opening, v.width, v.roundness))
    times += [min(total - trail + 1.0, total), max(total, num_frames)]
    params += [rest, rest]

    words: list[tuple[int, int, str]] = []
    for match in re.finditer(r"\S+", text):
        i, j = match.start(), match.end()
        start = starts[i] - (durations[i - 1] / 2 if i > 0 else 0.0)
        end = starts[j - 1] + durations[j - 1] + (durations[j] / 2 if j < len(text) else 0.0)
        words.append((int(round(start)), int(round(end)), match.group()))
    chars = [
        (float(start), float(start + length), ch)
        for start, length, ch in zip(starts, durations, text, strict=True)
        if not ch.isspace()
    ]
    return np.asarray(times), np.asarray(params, dtype=np.float64), words, num_frames, chars


def _interpolate(times: np.ndarray, params: np.ndarray, num_frames: int) -> np.ndarray:
    """Smoothstep interpolation of keyframe parameters at every frame: [T,3]."""
    t = np.arange(num_frames, dtype=np.float64)
    idx = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    span = np.maximum(times[idx + 1] - times[idx], 1e-6)
    w = _smoothstep(np.clip((t - times[idx]) / span, 0.0, 1.0))[:, None]
    return params[idx] * (1.0 - w) + params[idx + 1] * w


def _drift(
    rng: np.random.Generator, num_frames: int, fps: float, amplitude: float, max_hz: float = 0.6
) -> np.ndarray:
    """A smooth random signal [T] of roughly the given amplitude: a sum of three sinusoids."""
    t = np.arange(num_frames) / fps
    out = np.zeros(num_frames)
    for _ in range(3):
        freq = rng.uniform(0.05, max_hz)
        out += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    return amplitude * out / 2.0


def _make_look(rng: np.random.Generator) -> _Look:
    """Random colours and proportions for one speaker."""
    skin_tones = np.array(
        [[224, 182, 150], [200, 150, 115], [236, 196, 168], [175, 125, 90], [215, 170, 130]],
        dtype=np.float64,
    )
    skin = skin_tones[rng.integers(len(skin_tones))] * rng.uniform(0.92, 1.05)
    hair = np.array([[35, 25, 20], [70, 45, 25], [20, 20, 22], [110, 80, 45]])[rng.integers(4)]
    background = rng.uniform([30, 40, 60], [90, 110, 140])
    if rng.random() < 0.5:
        background = background[::-1]
    return _Look(
        skin=np.clip(skin, 0, 255),
        hair=hair.astype(np.float64) * rng.uniform(0.8, 1.2),
        lips=np.array([175, 70, 75]) * rng.uniform(0.85, 1.05),
        shirt=rng.uniform([20, 20, 30], [120, 110, 130]),
        background=background,
        iris=np.array([[60, 40, 25], [50, 70, 90], [40, 30, 20]])[rng.integers(3)].astype(float),
        brow_thickness=rng.uniform(0.07, 0.1),
        hair_drop=rng.uniform(0.0, 0.15),
    )


class _Canvas:
    """Draws face-local shapes onto an RGB uint8 image through a similarity transform."""

    def __init__(
        self, image: np.ndarray, centre: tuple[float, float], scale: float, angle_deg: float
    ) -> None:
        self.image = image
        self.cx, self.cy = centre
        self.scale = scale
        self.angle = angle_deg
        c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
        self.matrix = np.array([[c, -s], [s, c]]) * scale

    def points(self, local: np.ndarray) -> np.ndarray:
        """Face-local points [N,2] to pixel coordinates [N,2]."""
        return local @ self.matrix.T + np.array([self.cx, self.cy])

    def ellipse(
        self,
        centre: tuple[float, float],
        axes: tuple[float, float],
        colour: np.ndarray,
        angle: float = 0.0,
        start: float = 0.0,
        end: float = 360.0,
        thickness: float = -1,
    ) -> None:
        """An ellipse (filled, or an arc when thickness > 0) given in face-local units."""
        px = self.points(np.array([centre]))[0] * SUBPIXEL
        ax = (
            int(round(axes[0] * self.scale * SUBPIXEL)),
            int(round(axes[1] * self.scale * SUBPIXEL)),
        )
        thick = -1 if thickness < 0 else max(1, int(round(thickness * self.scale)))
        cv2.ellipse(
            self.image,
            (int(round(px[0])), int(round(px[1]))),
            ax,
            self.angle + angle,
            start,
            end,
            tuple(float(v) for v in colour),
            thick,
            cv2.LINE_AA,
            SHIFT,
        )

    def polygon(self, local: np.ndarray, colour: np.ndarray) -> np.ndarray:
        """A filled polygon from face-local points; returns its pixel points."""
        px = self.points(local)
        cv2.fillPoly(
            self.image,
            [np.round(px * SUBPIXEL).astype(np.int32)],
            tuple(float(v) for v in colour),
            cv2.LINE_AA,
            SHIFT,
        )
        return px


def _lip_curve(half_width: float, height: float, k: float, n: int = 12) -> np.ndarray:
    """x in [-w, w] and y = height * (1 - (x/w)^2)^k sampled at n+1 points."""
    x = np.linspace(-half_width, half_width, n + 1)
    y = height * np.clip(1.0 - (x / half_width) ** 2, 0.0, 1.0) ** k
    return np.stack([x, y], axis=1)


def _draw_mouth(
    canvas: _Canvas, look: _Look, centre_y: float, opening: float, width: float, roundness: float
) -> np.ndarray:
    """Lips, mouth interior and teeth; returns the lips' outer contour in pixels [N,2]."""
    w = 0.36 * width
    k = 0.9 - 0.4 * roundness
    upper_thick = 0.08 + 0.04 * roundness
    lower_thick = 0.11 + 0.04 * roundness
    top_y = centre_y - 0.3 * opening
    bottom_y = centre_y + 0.7 * opening
    upper = _lip_curve(w, upper_thick, k)
    bow = 0.025 * np.exp(-((upper[:, 0] / (0.25 * w)) ** 2))
    upper_outer = np.stack([upper[:, 0], top_y - upper[:, 1] + bow], axis=1)
    lower = _lip_curve(w, lower_thick, k)
    lower_outer = np.stack([lower[::-1, 0], bottom_y + lower[::-1, 1]], axis=1)
    corner_l = np.array([[-w, 0.5 * (top_y + bottom_y)]])
    corner_r = np.array([[w, 0.5 * (top_y + bottom_y)]])
    outer = np.concatenate([corner_l, upper_outer[1:-1], corner_r, lower_outer[1:-1]])
    outer_px = canvas.polygon(outer, look.lips)

    inner_w = w * (0.86 - 0.1 * roundness)
    gap = max(opening, 0.0)
    mid = 0.5 * (top_y + bottom_y)
    if gap > 0.012:
        inner_top = _lip_curve(inner_w, 0.5 * gap, 0.6)
        inner_bottom = inner_top[::-1]
        inner = np.concatenate(
            [
                np.stack([inner_top[:, 0], mid - inner_top[:, 1]], axis=1),
                np.stack([inner_bottom[:, 0], mid + inner_bottom[:, 1]], axis=1),
            ]
        )
        canvas.polygon(inner, np.array([45.0, 12.0, 18.0]))
        if gap > 0.06:
            teeth = _lip_curve(inner_w * 0.75, min(0.05, 0.3 * gap), 0.5)
            edge = mid - 0.5 * gap + 0.01
            teeth_poly = np.concatenate(
                [
                    np.stack([teeth[:, 0], np.full(len(teeth), edge)], axis=1),
                    np.stack([teeth[::-1, 0], edge + teeth[::-1, 1]], axis=1),
                ]
            )
            canvas.polygon(teeth_poly, np.array([225.0, 220.0, 205.0]))
    else:
        line = _lip_curve(inner_w, 0.0, 0.6)
        line[:, 1] = mid + 0.01 * np.abs(line[:, 0]) / inner_w
        px = np.round(canvas.points(line) * SUBPIXEL).astype(np.int32)
        cv2.polylines(
            canvas.image,
            [px],
            False,
            (70.0, 25.0, 30.0),
            max(1, int(round(0.025 * canvas.scale))),
            cv2.LINE_AA,
            SHIFT,
        )
    return outer_px


def _draw_head(canvas: _Canvas, look: _Look) -> None:
    """Everything but the mouth: shoulders, neck, hair, face oval, ears, eyes, brows, nose."""
    skin = look.skin
    shade = skin * 0.78
    b = FACE_ASPECT
    canvas.ellipse((0.0, 3.0), (2.6, 1.2), look.shirt)
    canvas.polygon(np.array([[-0.45, 0.6], [0.45, 0.6], [0.5, 1.95], [-0.5, 1.95]]), shade)
    canvas.ellipse((0.0, -0.28 - look.hair_drop * 0.2), (1.1, 1.12), look.hair)
    canvas.ellipse((-1.0, 0.02), (0.13, 0.26), shade)
    canvas.ellipse((1.0, 0.02), (0.13, 0.26), shade)
    canvas.ellipse((0.0, 0.0), (1.0, b), skin * 0.9)
    canvas.ellipse((0.0, 0.02), (0.9, b * 0.95), skin)
    canvas.ellipse((0.0, -0.92 + look.hair_drop), (0.93, 0.5), look.hair, start=180, end=360)
    canvas.ellipse((0.0, -0.35), (0.55, 0.35), np.minimum(skin * 1.06, 255))

    eye_y = -0.12
    for side in (-1.0, 1.0):
        ex = 0.37 * side
        canvas.ellipse((ex, eye_y + 0.01), (0.27, 0.15), skin * 0.6)
        canvas.ellipse((ex, eye_y), (0.17, 0.075), np.array([205.0, 200.0, 195.0]))
        canvas.ellipse((ex, eye_y), (0.075, 0.075), look.iris)
        canvas.ellipse((ex, eye_y), (0.035, 0.035), np.array([15.0, 12.0, 12.0]))
        canvas.ellipse(
            (ex, eye_y - 0.01), (0.18, 0.08), skin * 0.35, start=190, end=350, thickness=0.03
        )
        canvas.ellipse(
            (ex, eye_y - 0.12),
            (0.22, 0.1),
            look.hair * 0.9,
            start=200,
            end=340,
            thickness=look.brow_thickness,
        )
    canvas.polygon(
        np.array([[-0.08, -0.2], [0.08, -0.2], [0.11, 0.3], [-0.11, 0.3]]),
        np.minimum(skin * 1.12, 255),
    )
    for side in (-1.0, 1.0):
        canvas.polygon(
            np.array(
                [[0.1 * side, -0.05], [0.13 * side, -0.05], [0.2 * side, 0.36], [0.15 * side, 0.38]]
            ),
            skin * 0.72,
        )
        canvas.ellipse((0.1 * side, 0.38), (0.05, 0.03), skin * 0.35)
    canvas.ellipse((0.0, 0.34), (0.1, 0.06), np.minimum(skin * 1.1, 255))
    canvas.ellipse((0.0, 0.62), (0.42, 0.22), skin * 0.93)


def _background(look: _Look, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A smooth, blotchy backdrop, uint8 [H,W,3]."""
    width, height = size
    small = rng.normal(0.0, 1.0, size=(6, 8, 1)).astype(np.float32)
    blotch = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    ramp = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None, None]
    base = look.background.astype(np.float32)
    image = base * (1.0 + 0.12 * blotch + 0.15 * ramp * rng.uniform(-1, 1))
    return np.clip(image, 0, 255).astype(np.uint8)


def render_clip(
    text: str, seed: int, size: tuple[int, int] = FRAME_SIZE, fps: float = FPS, colour: bool = True
) -> SyntheticClip:
    """Render a talking face saying `text`; frames [T,H,W,3] RGB (grey replicated if not colour).

    `size` is (width, height). The same text and seed always give the same clip.
    """
    text = " ".join(text.lower().split())
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    width, height = size
    if width < 64 or height < 64:
        raise ValueError(f"frame size must be at least 64x64, got {size}")
    rng = np.random.default_rng(seed)
    look = _make_look(rng)
    times, params, words, num_frames, char_spans = _timeline(text, rng, fps)
    shapes = _interpolate(times, params, num_frames)

    half_width = min(width, height) * rng.uniform(0.19, 0.23)
    cx = width / 2 + rng.uniform(-0.05, 0.05) * width + _drift(rng, num_frames, fps, 0.06 * width)
    cy = height * 0.47 + _drift(rng, num_frames, fps, 0.05 * height)
    scale = half_width * (1.0 + _drift(rng, num_frames, fps, 0.1, max_hz=0.3))
    roll = _drift(rng, num_frames, fps, 3.0, max_hz=0.4)
    margin_x = scale * 1.15
    margin_y_top = scale * FACE_ASPECT * 1.2
    margin_y_bottom = scale * FACE_ASPECT * 1.05
    cx = np.clip(cx, margin_x, width - margin_x)
    cy = np.clip(cy, margin_y_top, height - margin_y_bottom)

    gain = 1.0 + _drift(rng, num_frames, fps, 0.3, max_hz=0.3) + rng.uniform(-0.25, 0.1)
    offset = _drift(rng, num_frames, fps, 12.0, max_hz=0.3)
    grad_strength = rng.uniform(0.05, 0.3) + _drift(rng, num_frames, fps, 0.1, max_hz=0.2)
    grad_angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    proj = (xs - width / 2) * np.cos(grad_angle) + (ys - height / 2) * np.sin(grad_angle)
    proj = (proj / (0.5 * np.hypot(width, height)))[..., None]
    proj = np.repeat(proj, 3, axis=-1).astype(np.float32)
    noise_sigma = rng.uniform(5.0, 10.0)
    pad = 16
    noise_bank = rng.standard_normal((3, height + pad, width + pad, 3), dtype=np.float32)
    noise_bank *= noise_sigma
    background = _background(look, rng, size)

    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    mouth_boxes = np.empty((num_frames, 4), dtype=np.float32)
    face_boxes = np.empty((num_frames, 4), dtype=np.float32)
    theta = np.radians(roll)
    face_half_w = scale * np.sqrt(np.cos(theta) ** 2 + (FACE_ASPECT * np.sin(theta)) ** 2)
    face_half_h = scale * np.sqrt(np.sin(theta) ** 2 + (FACE_ASPECT * np.cos(theta)) ** 2)
    face_boxes[:] = np.stack(
        [cx - face_half_w, cy - face_half_h, cx + face_half_w, cy + face_half_h], axis=1
    )
    for t in range(num_frames):
        image = background.copy()
        canvas = _Canvas(image, (float(cx[t]), float(cy[t])), float(scale[t]), float(roll[t]))
        _draw_head(canvas, look)
        lips = _draw_mouth(canvas, look, MOUTH_Y, *shapes[t])
        mouth_boxes[t] = (*lips.min(axis=0), *lips.max(axis=0))
        light = cv2.addWeighted(proj, float(gain[t] * grad_strength[t]), proj, 0.0, float(gain[t]))
        lit = cv2.multiply(image, light, dtype=cv2.CV_32F)
        oy, ox = rng.integers(0, pad, size=2)
        noise = noise_bank[t % len(noise_bank), oy : oy + height, ox : ox + width]
        cv2.addWeighted(lit, 1.0, noise, 1.0, float(offset[t]), dst=frames[t], dtype=cv2.CV_8U)
    if not colour:
        grey = (frames @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).round()
        frames = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=-1)
    return SyntheticClip(
        frames=frames,
        mouth_boxes=mouth_boxes,
        face_boxes=face_boxes,
        text=text,
        fps=float(fps),
        words=words,
        mouth_opening=shapes[:, 0].astype(np.float32),
        char_spans=char_spans,
    )


_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


def write_clip(clip: SyntheticClip, path: str | os.PathLike) -> Path:
    """Write the clip as .mp4 (mp4v) or .avi (MJPG), atomically; returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _CODECS:
        raise ValueError(f"unsupported video extension {path.suffix!r}; use .mp4 or .avi")
    height, width = clip.frames.shape[1:3]
    with atomic_path(path, suffix=suffix) as tmp:
        writer = cv2.VideoWriter(
            str(tmp), cv2.VideoWriter_fourcc(*_CODECS[suffix]), clip.fps, (width, height)
        )
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot open a {_CODECS[suffix]} writer for {path}")
        try:
            for frame in clip.frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return path


def _grid_slots(vocabulary: Sequence[str] | None) -> list[tuple[str, ...]]:
    """The six GRID word slots, each restricted to `vocabulary` when given."""
    slots = list(GRID_GRAMMAR.values())
    if vocabulary is None:
        return slots
    allowed = set(vocabulary)
    restricted = [tuple(w for w in slot if w in allowed) for slot in slots]
    for name, slot in zip(GRID_GRAMMAR, restricted, strict=True):
        if not slot:
            raise ValueError(f"vocabulary leaves the GRID {name} slot empty")
    return restricted


def _sentences(
    num_clips: int, rng: random.Random, layout: str, vocabulary: Sequence[str] | None
) -> list[list[str]]:
    """Distinct GRID sentences (layout grid, or manifest without vocabulary) or word strings."""
    if layout == "manifest" and vocabulary is not None:
        words = sorted(set(vocabulary))
        if not words:
            raise ValueError("vocabulary is empty")
        return [[rng.choice(words) for _ in range(rng.randint(3, 6))] for _ in range(num_clips)]
    slots = _grid_slots(vocabulary)
    capacity = int(np.prod([len(slot) for slot in slots]))
    if num_clips > capacity:
        raise ValueError(f"{num_clips} clips asked but the grammar has {capacity} sentences")
    seen: set[tuple[str, ...]] = set()
    sentences = []
    while len(sentences) < num_clips:
        sentence = tuple(rng.choice(slot) for slot in slots)
        if sentence not in seen:
            seen.add(sentence)
            sentences.append(list(sentence))
    return sentences


def _align_text(clip: SyntheticClip) -> str:
    """GRID alignment lines: `start end word`, times in 1/1000 frame, sil at both ends."""
    lines = []
    cursor = 0
    for start, end, word in clip.words:
        if start > cursor:
            lines.append((cursor, start, "sil"))
        lines.append((start, end, word))
        cursor = end
    lines.append((cursor, clip.num_frames, "sil"))
    return "".join(f"{s * 1000} {e * 1000} {w}\n" for s, e, w in lines)


def write_synthetic_corpus(
    output_dir: str | os.PathLike,
    num_clips: int,
    seed: int = 0,
    layout: str = "grid",
    vocabulary: Sequence[str] | None = None,
    size: tuple[int, int] = FRAME_SIZE,
    fps: float = FPS,
    audio: bool = False,
) -> dict:
    """Render `num_clips` clips with transcripts and ground_truth.json; returns a summary dict.

    audio=True also writes each clip's sound track (data_prep/synthetic/speech.py) as a
    16 kHz WAV beside its video, which preparation uses as the clip's audio.

    layout "grid": `s1/video/<id>.mp4` + `s1/align/<id>.align` with GRID-grammar sentences
    (restricted per slot to `vocabulary` if given) and GRID ids. layout "manifest":
    `<id>.mp4` + `manifest.csv` (id, video, transcript); sentences are 3-6 words drawn from
    `vocabulary`, or GRID sentences without one. ground_truth.json maps each id to its text,
    video path (relative to `output_dir`), words and per-frame mouth and face boxes.
    """
    if layout not in ("grid", "manifest"):
        raise ValueError(f"layout must be 'grid' or 'manifest', got {layout!r}")
    if num_clips < 0:
        raise ValueError(f"num_clips must be non-negative, got {num_clips}")
    root = Path(output_dir)
    rng = random.Random(seed)
    sentences = _sentences(num_clips, rng, layout, vocabulary)
    clip_seeds = np.random.SeedSequence(seed).generate_state(max(num_clips, 1))
    records = []
    truth: dict[str, dict] = {}
    manifest_rows = []
    for index, words in enumerate(sentences):
        text = " ".join(words)
        if layout == "grid":
            clip_id = grid_sentence_id(words)
            video = Path("s1", "video", f"{clip_id}.mp4")
        else:
            clip_id = f"clip{index:05d}"
            video = Path(f"{clip_id}.mp4")
        clip = render_clip(text, int(clip_seeds[index]), size=size, fps=fps)
        write_clip(clip, root / video)
        if audio:

            sound = synthesize_speech(clip, seed=int(clip_seeds[index]))
            write_wav(sound, (root / video).with_suffix(".wav"))
        if layout == "grid":
            align = root / "s1" / "align" / f"{clip_id}.align"
            align.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(align, _align_text(clip))
        else:
            manifest_rows.append({"id": clip_id, "video": video.as_posix(), "transcript": text})
        truth[clip_id] = {
            "text": text,
            "video": video.as_posix(),
            "num_frames": clip.num_frames,
            "words": [list(w) for w in clip.words],
            "mouth_boxes": np.round(clip.mouth_boxes, 2).tolist(),
            "face_boxes": np.round(clip.face_boxes, 2).tolist(),
        }
        records.append(
            {
                "id": clip_id,
                "video": str(root / video),
                "transcript": text,
                "num_frames": clip.num_frames,
            }
        )
    root.mkdir(parents=True, exist_ok=True)
    if layout == "manifest":
        lines = [["id", "video", "transcript"]] + [
            [row["id"], row["video"], row["transcript"]] for row in manifest_rows
        ]
        write_text_atomic(root / "manifest.csv", _csv_text(lines))
    ground_truth = {"fps": fps, "size": list(size), "box_format": "x0,y0,x1,y1", "clips": truth}
    write_text_atomic(root / "ground_truth.json", json.dumps(ground_truth))
    return {
        "layout": layout,
        "root": str(root),
        "num_clips": num_clips,
        "num_frames": sum(r["num_frames"] for r in records),
        "ground_truth": str(root / "ground_truth.json"),
        "manifest": str(root / "manifest.csv") if layout == "manifest" else None,
        "clips": records,
    }


def _csv_text(rows: list[list[str]]) -> str:
    """Rows as CSV text."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
