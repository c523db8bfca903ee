"""Mouth region of interest: sparse face detection, mouth box, temporal smoothing, fixed crops.

`track_mouth` runs the face detector only every `detect_every` frames (retrying on neighbouring
frames when a scheduled detection fails), interpolates face boxes in between, places the mouth
box by a geometric prior on the face box (or the detector's mouth landmarks), moves it to the
lips found in the lower face (their redness and the dark line between them), and smooths centre
and size over time. `crop_mouths` cuts fixed-size crops around the smoothed boxes.
`lips_present` checks that a crop is centred on lips, for tests and quality reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from data_prep.faces import (
    MOUTH_CORNERS,
    MOUTH_LANDMARKS,
    Detections,
    FaceDetector,
    HaarFaceDetector,
    RegionFaceDetector,
    choose_face,
)

# Mouth box relative to a frontal face box (Haar-style, forehead to chin): centre and width as
# fractions of the face box, height as a fraction of the mouth width.
MOUTH_CENTRE_X = 0.5
MOUTH_CENTRE_Y = 0.78
MOUTH_WIDTH = 0.30  # lips' width / face-box width (Haar boxes)
MOUTH_ASPECT = 0.5
LANDMARK_MOUTH_WIDTH = 1.0  # mouth box width / lip-corner distance


@dataclass(frozen=True)
class CropPreset:
    """Output crop size (width x height, colour or gray); crop width = `scale` x mouth width."""

    width: int
    height: int
    grayscale: bool
    scale: float = 2.24

    @property
    def channels(self) -> int:
        """1 for grayscale, 3 for RGB."""
        return 1 if self.grayscale else 3


CROP_PRESETS: dict[str, CropPreset] = {
    "lipnet": CropPreset(width=100, height=50, grayscale=False),
    # LipNet's framing in gray at 0.64x the pixels: the GRID recipe's crop (BUILD.md, study).
    "gray80": CropPreset(width=80, height=40, grayscale=True),
    "gray96": CropPreset(width=96, height=96, grayscale=True),
    "small": CropPreset(width=48, height=24, grayscale=True),  # quick CPU runs and the demo
}


@dataclass
class MouthTrack:
    """A clip's mouth track: mouth_boxes, face_boxes float32 [T,4], confidence float32 [T].

    Boxes are (x0, y0, x1, y1) in pixels, NaN on frames inside a loss longer than the allowed
    gap. confidence is in [0,1]; detected bool [T] marks frames where a detection ran and found
    the face; lost_frames counts frames whose scheduled detection failed, longest_gap the
    longest run of them; evidence float32 [T] is the lip evidence strength in [0,1]. flags:
    "no_face", "face_lost_too_long" (the clip should be skipped), "low_confidence".
    """

    mouth_boxes: np.ndarray
    face_boxes: np.ndarray
    confidence: np.ndarray
    detected: np.ndarray
    lost_frames: int
    flags: list[str] = field(default_factory=list)
    longest_gap: int = 0
    evidence: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        """T."""
        return len(self.mouth_boxes)

    @property
    def has_box(self) -> np.ndarray:
        """bool [T]: a usable mouth box on that frame."""
        return np.isfinite(self.mouth_boxes).all(axis=1) & (self.confidence > 0)

    @property
    def ok(self) -> bool:
        """True when the clip can be cropped: a face was followed and never lost for too long."""
        return not ({"no_face", "face_lost_too_long"} & set(self.flags))


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3) or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [T,H,W,1|3], got {frames.dtype} {frames.shape}")
    if len(frames) == 0:
        raise ValueError("no frames")
    return frames


def _schedule(
    num_frames: int, every: int, retry_offsets: tuple[int, ...]
) -> list[tuple[int, int, list[int]]]:
    """Detection slots (start, end, frames to try): one per `every` frames, tried at the slot's
    centre first, then at the offsets within it; a short last slot joins the one before."""
    bounds = list(range(0, num_frames, every)) + [num_frames]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < every / 2:
        del bounds[-2]
    slots = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        centre = (start + end - 1) // 2
        tries = [centre] + [centre + o for o in retry_offsets if start <= centre + o < end]
        slots.append((start, end, list(dict.fromkeys(tries))))
    return slots


def _landmark_mouth(det: Detections) -> tuple[float, float, float] | None:
    """Mouth centre and width (px) from one detection's landmarks, if its scheme has them."""
    scheme = det.landmark_scheme
    if det.landmarks is None or scheme not in MOUTH_LANDMARKS:
        return None
    points = det.landmarks[0][list(MOUTH_LANDMARKS[scheme])]
    cx, cy = points.mean(axis=0)
    if scheme in MOUTH_CORNERS:
        left, right = det.landmarks[0][list(MOUTH_CORNERS[scheme])]
        width = LANDMARK_MOUTH_WIDTH * float(np.hypot(*(right - left)))
    else:
        width = MOUTH_WIDTH * float(det.boxes[0, 2] - det.boxes[0, 0])
    return float(cx), float(cy), width


def _find_face(
    detector: FaceDetector, frame: np.ndarray, previous: np.ndarray | None
) -> Detections | None:
    if previous is not None and isinstance(detector, RegionFaceDetector):
        found = detector.detect_near(frame, previous)
        index = choose_face(found, previous, frame.shape)
        if index is not None:
            return found.select(index)
    found = detector.detect(frame)
    index = choose_face(found, previous, frame.shape)
    return None if index is None else found.select(index)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in a bool [T] mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median then running mean over `window` frames (edges replicated)."""
    if window <= 1 or len(values) < 2:
        return values.astype(np.float32)
    half = window // 2
    padded = np.pad(values.astype(np.float64), half, mode="edge")
    stacked = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    median = np.median(stacked, axis=1)
    padded = np.pad(median, half, mode="edge")
    return (
        np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
        .mean(axis=1)
        .astype(np.float32)
    )


def _lip_offsets(
    frames: np.ndarray, cx: np.ndarray, cy: np.ndarray, mouth_width: float
) -> tuple[np.ndarray, np.ndarray]:
    """Vertical offsets float [T] from the prior centres `cy` to the lips, and evidence [T] in
    [0,1], for frames [T,H,W,C] with prior mouth centres (cx, cy) [T] and mouth width (px).

    Looks at a window around each prior centre, over the middle of the mouth: the lips are the
    reddest rows ((R-G)/(R+G+B)) and the line between them the darkest; both are weighted by a
    Gaussian prior around `cy` so the nose and chin do not pull the estimate. Grayscale frames
    use the dark line only. All frames are processed together on a 2x subsampled window.
    """
    count, height, width = frames.shape[:3]
    offsets = np.zeros(count, np.float32)
    evidence = np.zeros(count, np.float32)
    win_h = int(round(1.26 * mouth_width)) // 2 * 2
    win_w = int(round(0.98 * mouth_width)) // 2 * 2
    if win_h < 8 or win_w < 4 or win_h > height or win_w > width:
        return offsets, evidence
    top = np.clip(np.round(cy - win_h / 2).astype(int), 0, height - win_h)
    left = np.clip(np.round(cx - win_w / 2).astype(int), 0, width - win_w)
    region = np.stack(
        [
            frames[t, y : y + win_h : 2, x : x + win_w : 2]
            for t, y, x in zip(range(count), top, left, strict=True)
        ]
    ).astype(np.float32)
    rows = top[:, None] + 2.0 * np.arange(region.shape[1])[None, :] - cy[:, None]
    prior = np.exp(-0.5 * (rows / (0.35 * mouth_width)) ** 2)
    if region.shape[3] == 3:
        red, green = region[..., 0], region[..., 1]
        redness = ((red - green) / (region.sum(axis=3) + 1.0)).mean(axis=2)
        excess = redness - np.median(redness, axis=1, keepdims=True)
        weights = np.clip(excess, 0.0, None) * prior
        total = weights.sum(axis=1)
        red_at = (weights * rows).sum(axis=1) / np.maximum(total, 1e-9)
        luma = (0.5 * red + 0.5 * green).mean(axis=2)
        evidence[:] = np.clip(excess.max(axis=1) / 0.04, 0.0, 1.0)
    else:
        luma = region[..., 0].mean(axis=2)
        total = np.zeros(count)
        red_at = np.zeros(count)
        evidence[:] = np.clip((np.median(luma, axis=1) - luma.min(axis=1)) / 25.0, 0.0, 1.0)
    darkness = np.clip(np.median(luma, axis=1, keepdims=True) - luma, 0.0, None) * prior
    dark_at = rows[np.arange(count), np.argmax(darkness, axis=1)]
    dark_at = np.where(darkness.max(axis=1) > 0, dark_at, 0.0)
    estimate = np.where(total > 0, 0.5 * red_at + 0.5 * dark_at, dark_at)
    limit = 0.42 * mouth_width
    offsets[:] = np.clip(estimate, -limit, limit)
    return offsets, evidence


def _lip_shifts(
    frames: np.ndarray, cx: np.ndarray, cy: np.ndarray, mouth_width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal and vertical shifts float [T] from the prior centres (cx, cy) [T] to the lips,
    and evidence [T] in [0,1], searching sideways as well as up and down.

    For face-track clips, where the face box is often a prior rather than a detection and heads
    turn: the mouth may sit a mouth-width or more to the side of where a frontal face puts it.
    Each frame's window (3.0 x 1.6 mouth widths, 2x subsampled) is scored for lip redness
    ((R-G)/(R+G+B) above the window's median) and darkness (the line between the lips), summed
    over a lip-sized box and weighted by a Gaussian prior around the centre; the lips are the
    unweighted centre of mass of the scores around the best box. Grayscale frames use darkness
    only.
    """
    count, height, width = frames.shape[:3]
    shifts_x, shifts_y = np.zeros(count, np.float32), np.zeros(count, np.float32)
    evidence = np.zeros(count, np.float32)
    win_w = min(int(round(3.0 * mouth_width)) // 2 * 2, width // 2 * 2)
    win_h = min(int(round(1.6 * mouth_width)) // 2 * 2, height // 2 * 2)
    if win_h < 8 or win_w < 8:
        return shifts_x, shifts_y, evidence
    box = (max(3, int(0.4 * mouth_width)) | 1, max(3, int(0.18 * mouth_width)) | 1)
    top = np.clip(np.round(cy - win_h / 2).astype(int), 0, height - win_h)
    left = np.clip(np.round(cx - win_w / 2).astype(int), 0, width - win_w)
    for t in range(count):
        region = frames[t, top[t] : top[t] + win_h : 2, left[t] : left[t] + win_w : 2]
        region = region.astype(np.float32)
        rows = top[t] + 2.0 * np.arange(region.shape[0]) - cy[t]
        cols = left[t] + 2.0 * np.arange(region.shape[1]) - cx[t]
        prior = np.exp(
            -0.5 * (rows[:, None] / (0.45 * mouth_width)) ** 2
            - 0.5 * (cols[None, :] / mouth_width) ** 2
        )
        if region.shape[2] == 3:
            red, green = region[..., 0], region[..., 1]
            redness = (red - green) / (region.sum(axis=2) + 1.0)
            excess = np.clip(redness - np.median(redness), 0.0, None)
            luma = 0.5 * red + 0.5 * green
            score = excess / 0.03 + np.clip(np.median(luma) - luma, 0.0, None) / 40.0
            strength = float(cv2.blur(excess, box).max()) / 0.04
            boxed = cv2.blur(score, box)
        else:
            luma = region[..., 0]
            score = np.clip(np.median(luma) - luma, 0.0, None) / 25.0
            boxed = cv2.blur(score, box)
            strength = float(boxed.max())
        weighted = boxed * prior
        row, col = np.unravel_index(int(np.argmax(weighted)), weighted.shape)
        # The best box is pulled towards the prior along the lips; their centre of mass around
        # it, without the prior, is where they are.
        near = (
            slice(max(row - box[1], 0), row + box[1] + 1),
            slice(max(col - box[0], 0), col + box[0] + 1),
        )
        mass = score[near]
        total = float(mass.sum())
        if total > 0:
            shifts_y[t] = float((mass.sum(axis=1) * rows[near[0]]).sum()) / total
            shifts_x[t] = float((mass.sum(axis=0) * cols[near[1]]).sum()) / total
        else:
            shifts_y[t], shifts_x[t] = rows[row], cols[col]
        evidence[t] = min(max(strength, 0.0), 1.0)
    return shifts_x, shifts_y, evidence


def track_mouth(
    frames: np.ndarray,
    detector: FaceDetector | None = None,
    detect_every: int = 12,
    max_gap_frames: int = 25,
    *,
    retry_offsets: tuple[int, ...] = (1, -1, 2, -2, 3, -3),
    refine: bool = True,
    sideways: bool = False,
    smooth_window: int = 5,
) -> MouthTrack:
    """Mouth boxes over a clip of uint8 frames [T,H,W,C] (RGB or gray) -> MouthTrack.

    Detects the face on one frame per `detect_every` (retrying at `retry_offsets` around it),
    follows the same face (choose_face), interpolates between detections, and flags the clip
    when the face is missing for more than `max_gap_frames` frames in a row (those frames get
    NaN boxes). Pass one detector for many clips: building the default Haar one takes ~10 ms.
    `sideways` lets the lip finder move the mouth box sideways as well as up and down: for
    face-track clips, where heads turn (a frontal box then puts the mouth off centre) and the
    face box is often FaceTrackDetector's prior rather than a detection.
    """
    frames = _check_frames(frames)
    if detect_every < 1 or max_gap_frames < 0:
        raise ValueError(
            f"need detect_every >= 1, max_gap_frames >= 0; got {detect_every}, {max_gap_frames}"
        )
    detector = detector if detector is not None else HaarFaceDetector()
    count = len(frames)
    found_at: list[int] = []
    found_boxes: list[np.ndarray] = []
    found_scores: list[float] = []
    found_mouths: list[tuple[float, float, float] | None] = []
    lost = np.zeros(count, bool)
    previous: np.ndarray | None = None
    lost_run = 0
    for start, end, tries in _schedule(count, detect_every, retry_offsets):
        hit = None
        for t in tries:
            hit = _find_face(detector, frames[t], previous)
            if hit is not None:
                found_at.append(t)
                break
        if hit is None:
            lost[start:end] = True
            lost_run += end - start
            if lost_run > max_gap_frames:
                previous = None
            continue
        lost_run = 0
        previous = hit.boxes[0]
        found_boxes.append(hit.boxes[0])
        found_scores.append(float(hit.scores[0]))
        found_mouths.append(_landmark_mouth(hit))

    detected = np.zeros(count, bool)
    nan_boxes = np.full((count, 4), np.nan, np.float32)
    if not found_at:
        return MouthTrack(
            mouth_boxes=nan_boxes,
            face_boxes=nan_boxes.copy(),
            confidence=np.zeros(count, np.float32),
            detected=detected,
            lost_frames=count,
            flags=["no_face"],
            longest_gap=count,
            evidence=np.zeros(count, np.float32),
        )
    at = np.asarray(found_at, np.float64)
    detected[found_at] = True
    times = np.arange(count, dtype=np.float64)
    boxes = np.asarray(found_boxes, np.float64)
    face = np.stack([np.interp(times, at, boxes[:, i]) for i in range(4)], axis=1)
    face_w, face_h = face[:, 2] - face[:, 0], face[:, 3] - face[:, 1]

    use_landmarks = all(m is not None for m in found_mouths)
    if use_landmarks:
        mouths = np.asarray(found_mouths, np.float64)
        rel_x = (mouths[:, 0] - boxes[:, 0]) / (boxes[:, 2] - boxes[:, 0])
        rel_y = (mouths[:, 1] - boxes[:, 1]) / (boxes[:, 3] - boxes[:, 1])
        rel_w = mouths[:, 2] / (boxes[:, 2] - boxes[:, 0])
        cx = face[:, 0] + np.interp(times, at, rel_x) * face_w
        cy = face[:, 1] + np.interp(times, at, rel_y) * face_h
        mouth_w = np.interp(times, at, rel_w) * face_w
    else:
        cx = face[:, 0] + MOUTH_CENTRE_X * face_w
        cy = face[:, 1] + MOUTH_CENTRE_Y * face_h
        mouth_w = MOUTH_WIDTH * face_w

    evidence = np.ones(count, np.float32)
    if refine and not use_landmarks and sideways:
        shifts_x, shifts_y, evidence = _lip_shifts(frames, cx, cy, float(np.median(mouth_w)))
        # A running median first: one frame's shadow or background never moves the box alone.
        cx = cx + _smooth(shifts_x, 9)
        cy = cy + _smooth(shifts_y, 9)
    elif refine and not use_landmarks:
        offsets, evidence = _lip_offsets(frames, cx, cy, float(np.median(mouth_w)))
        cy = cy + offsets

    cx = _smooth(cx, smooth_window)
    cy = _smooth(cy, smooth_window)
    mouth_w = _smooth(mouth_w, max(smooth_window, 2 * detect_every + 1))
    mouth_h = MOUTH_ASPECT * mouth_w
    mouth = np.stack([cx - mouth_w / 2, cy - mouth_h / 2, cx + mouth_w / 2, cy + mouth_h / 2], 1)

    distance = np.min(np.abs(times[:, None] - at[None, :]), axis=1)
    proximity = np.clip(1.0 - (distance - detect_every) / (max_gap_frames + 1.0), 0.0, 1.0)
    score = np.interp(times, at, np.asarray(found_scores))
    confidence = (score * proximity * (0.5 + 0.5 * evidence)).astype(np.float32)

    flags: list[str] = []
    longest = 0
    for start, end in _runs(lost):
        longest = max(longest, end - start)
        if end - start > max_gap_frames:
            mouth[start:end] = np.nan
            face[start:end] = np.nan
            confidence[start:end] = 0.0
    if longest > max_gap_frames:
        flags.append("face_lost_too_long")
    if float(np.median(confidence)) < 0.25:
        flags.append("low_confidence")
    return MouthTrack(
        mouth_boxes=mouth.astype(np.float32),
        face_boxes=face.astype(np.float32),
        confidence=confidence,
        detected=detected,
        lost_frames=int(lost.sum()),
        flags=flags,
        longest_gap=longest,
        evidence=evidence,
    )


def crop_box(mouth_box: np.ndarray, preset: CropPreset) -> np.ndarray:
    """The source rectangle float32 [4] (x0,y0,x1,y1) a preset crops around one mouth box [4]."""
    x0, y0, x1, y1 = (float(v) for v in mouth_box)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    width = preset.scale * (x1 - x0)
    height = width * preset.height / preset.width
    corners = [cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2]
    return np.asarray(corners, np.float32)


def crop_mouths(
    frames: np.ndarray, mouth_boxes: np.ndarray, preset: str | CropPreset = "lipnet"
) -> np.ndarray:
    """Fixed-size crops uint8 [T,h,w,C] around mouth boxes [T,4] of frames [T,H,W,C].

    The crop is centred on each box, `preset.scale` times its width, at the preset's aspect;
    parts outside the frame repeat the edge pixels; resized with INTER_AREA.
    """
    frames = _check_frames(frames)
    if isinstance(preset, str):
        try:
            preset = CROP_PRESETS[preset]
        except KeyError:
            raise ValueError(
                f"unknown crop preset {preset!r}; choose from {sorted(CROP_PRESETS)}"
            ) from None
    boxes = np.asarray(mouth_boxes, np.float32)
    if boxes.shape != (len(frames), 4):
        raise ValueError(f"need mouth boxes [{len(frames)},4], got {boxes.shape}")
    bad = np.flatnonzero(~np.isfinite(boxes).all(axis=1) | (boxes[:, 2] <= boxes[:, 0]))
    if len(bad):
        raise ValueError(
            f"no usable mouth box on frames {bad[:10].tolist()}"
            f"{' ...' if len(bad) > 10 else ''} ({len(bad)} in all); "
            "check MouthTrack.flags before cropping"
        )
    if frames.shape[-1] == 1 and not preset.grayscale:
        raise ValueError("colour crops need RGB frames; these are grayscale")
    out = np.empty((len(frames), preset.height, preset.width, preset.channels), np.uint8)
    size = (preset.width, preset.height)
    height, width = frames.shape[1:3]
    for t in range(len(frames)):
        x0, y0, x1, y1 = crop_box(boxes[t], preset)
        left, top = round(x0), round(y0)
        right = left + max(1, round(x1 - x0))
        bottom = top + max(1, round(y1 - y0))
        frame = frames[t] if frames.shape[-1] == 3 else frames[t, :, :, 0]
        patch = frame[max(0, top) : min(height, bottom), max(0, left) : min(width, right)]
        if patch.size == 0:
            raise ValueError(f"mouth box {boxes[t].tolist()} on frame {t} lies outside the image")
        if left < 0 or top < 0 or right > width or bottom > height:
            patch = cv2.copyMakeBorder(
                patch,
                max(0, -top),
                max(0, bottom - height),
                max(0, -left),
                max(0, right - width),
                cv2.BORDER_REPLICATE,
            )
        if patch.ndim == 3 and preset.grayscale:
            patch = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY)
        resized = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
        out[t] = resized.reshape(out.shape[1:])
    return out


LIP_REDNESS_UNIT = 0.03  # (R-G)/(R+G+B) excess of the lip band over the top rows that counts
LIP_DARKNESS_UNIT = 8.0  # grey levels the lip line is darker than the top rows, for gray crops
LIP_LINE_TOLERANCE = 0.08  # how far (fraction of crop height) the lip line may sit from centre


def _lip_features(crop: np.ndarray) -> tuple[float, float]:
    """Contrast of the centre band over the top rows (in units) and the lip line's height [0,1]."""
    crop = np.asarray(crop)
    if crop.ndim == 2:
        crop = crop[..., None]
    if crop.ndim != 3 or crop.shape[2] not in (1, 3) or min(crop.shape[:2]) < 8:
        raise ValueError(f"expected a crop [h,w,1|3] of at least 8x8, got {crop.shape}")
    height, width = crop.shape[:2]
    pixels = crop[:, width // 4 : width - width // 4].astype(np.float32)
    band = slice(int(0.3 * height), int(math.ceil(0.7 * height)))
    top = slice(0, max(1, int(0.15 * height)))
    if crop.shape[2] == 3:
        red, green = pixels[:, :, 0], pixels[:, :, 1]
        redness = np.percentile((red - green) / (pixels.sum(axis=2) + 1.0), 75, axis=1)
        luma = (0.5 * red + 0.5 * green).mean(axis=1)
        contrast = float(redness[band].max() - redness[top].mean()) / LIP_REDNESS_UNIT
    else:
        luma = pixels[:, :, 0].mean(axis=1)
        contrast = float(luma[top].mean() - luma[band].min()) / LIP_DARKNESS_UNIT
    inner = slice(int(0.15 * height), int(math.ceil(0.85 * height)))
    line = (int(np.argmin(luma[inner])) + inner.start + 0.5) / height
    return contrast, line


def lips_present_score(crop: np.ndarray) -> float:
    """How clearly a mouth crop uint8 [h,w,C] (RGB or gray) is centred on lips; > 1 means lips.

    Two tests, the score is the weaker: the band around the vertical centre must be redder
    than the top rows (per row, the 75th percentile of (R-G)/(R+G+B) over the middle half of
    the columns, so open lips around teeth still count), in units of
    LIP_REDNESS_UNIT (for gray crops: darker, in LIP_DARKNESS_UNIT); and the darkest row, the
    line between the lips, must lie within LIP_LINE_TOLERANCE of the centre (score 1 at the
    tolerance, 3 when exactly centred). A crop on the nose, cheek or chin fails one of them.
    """
    contrast, line = _lip_features(crop)
    centring = 1.0 + (LIP_LINE_TOLERANCE - abs(line - 0.5)) / (0.5 * LIP_LINE_TOLERANCE)
    return float(min(contrast, centring))


def lips_present(crop: np.ndarray, threshold: float = 1.0) -> bool:
    """True when the crop [h,w,C] looks centred on lips (lips_present_score above threshold)."""
    return lips_present_score(crop) > threshold


def roi_statistics(track: MouthTrack) -> dict[str, Any]:
    """Summary of a track for the manifest: box centre/size mean and std, confidence, losses."""
    usable = track.has_box
    boxes = track.mouth_boxes[usable].astype(np.float64)
    stats: dict[str, Any] = {
        "num_frames": track.num_frames,
        "frames_with_box": int(usable.sum()),
        "detected_frames": int(track.detected.sum()),
        "lost_frames": int(track.lost_frames),
        "longest_gap": int(track.longest_gap),
        "confidence_mean": float(track.confidence.mean()),
        "confidence_min": float(track.confidence.min()),
        "flags": list(track.flags),
    }
    if len(boxes):
        centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
        centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
        width = boxes[:, 2] - boxes[:, 0]
        height = boxes[:, 3] - boxes[:, 1]
        for name, values in (
            ("centre_x", centre_x),
            ("centre_y", centre_y),
            ("width", width),
            ("height", height),
        ):
            stats[f"{name}_mean"] = float(values.mean())
            stats[f"{name}_std"] = float(values.std())
    return stats
