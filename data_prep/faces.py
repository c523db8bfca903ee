"""Face detectors behind one interface: Haar cascade (default, built into OpenCV), MediaPipe, dlib.

Every detector takes one frame (uint8 RGB [H,W,3] or grayscale [H,W] / [H,W,1]) and returns
`Detections` in that frame's pixel coordinates. Optional back-ends import their package only
when built and never download anything: a missing package raises `MissingDependencyError`
naming what to install, and model files must be given by the user.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from data_prep.errors import LipseqError

HAAR_CASCADE = "haarcascade_frontalface_default.xml"

# Landmark layouts a detector may return, and which points outline the mouth in each.
MOUTH_LANDMARKS: dict[str, tuple[int, ...]] = {
    "dlib68": tuple(range(48, 68)),
    "mediapipe6": (3,),
    # The lips' outer edge in the 468-point face mesh (data_prep/landmarks.py).
    "facemesh468": (
        *(61, 146, 91, 181, 84, 17, 314, 405, 321),
        *(375, 291, 409, 270, 269, 267, 0, 37, 39),
    ),
}
MOUTH_CORNERS: dict[str, tuple[int, int]] = {"dlib68": (48, 54), "facemesh468": (61, 291)}


class MissingDependencyError(LipseqError, ImportError):
    """An optional detector's package (or model file) is not available."""


@dataclass(frozen=True)
class Detections:
    """Faces in one frame: boxes float32 [N,4], scores float32 [N], landmarks [N,K,2] or None.

    Boxes are (x0, y0, x1, y1) and landmarks (x, y) in the frame's pixels; scores are in [0,1];
    `landmark_scheme` names the landmark layout (a key of MOUTH_LANDMARKS, or None).
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray | None = None
    landmark_scheme: str | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, np.float32).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        if self.landmarks is not None:
            landmarks = np.asarray(self.landmarks, np.float32)
            if landmarks.ndim != 3 or landmarks.shape[0] != len(boxes) or landmarks.shape[2] != 2:
                raise ValueError(
                    f"landmarks must be [N,K,2] with N={len(boxes)}, got {landmarks.shape}"
                )
            object.__setattr__(self, "landmarks", landmarks)

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> Detections:
        """No faces."""
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def mapped(self, scale: float, offset: tuple[float, float]) -> Detections:
        """These detections in another frame's coordinates: p / scale + offset."""
        shift = np.asarray(offset, np.float32)
        landmarks = None if self.landmarks is None else self.landmarks / scale + shift
        return Detections(
            self.boxes / scale + np.tile(shift, 2), self.scores, landmarks, self.landmark_scheme
        )

    def select(self, index: int) -> Detections:
        """Only the face at `index`."""
        landmarks = None if self.landmarks is None else self.landmarks[index : index + 1]
        return Detections(
            self.boxes[index : index + 1],
            self.scores[index : index + 1],
            landmarks,
            self.landmark_scheme,
        )


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in one uint8 frame (RGB [H,W,3] or grayscale [H,W] / [H,W,1]).

    searches_sideways: the mouth tracker may look beside a lost face (face-track clips whose
    speaker turns), not only where it was.
    """

    searches_sideways: bool

    def detect(self, frame: np.ndarray) -> Detections: ...


@runtime_checkable
class RegionFaceDetector(FaceDetector, Protocol):
    """A detector that can also search only around a known face box, for cheap tracking."""

    def detect_near(self, frame: np.ndarray, box: np.ndarray) -> Detections: ...


def to_gray(frame: np.ndarray) -> np.ndarray:
    """A uint8 grayscale view or copy [H,W] of an RGB [H,W,3] or grayscale [H,W(,1)] frame."""
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    raise ValueError(f"expected a frame [H,W], [H,W,1] or [H,W,3], got shape {frame.shape}")


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """A uint8 RGB [H,W,3] frame from an RGB or grayscale frame."""
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    return cv2.cvtColor(to_gray(frame), cv2.COLOR_GRAY2RGB)


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float32)))


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade on a downscaled, equalised grayscale frame.

    `detect` shrinks the frame so that the smallest face wanted (`min_face_fraction` of the
    shorter side) just fills the cascade's 24 px window, which keeps the search cheap.
    `detect_near` searches only a margin around a known face box, shrunk so that face is
    about the window size, for sizes within `near_size_tolerance` of it: a few scales on a
    ~45 px image. Scores map the cascade's final-stage level weights to [0,1] with a
    logistic curve; detections whose weight is below `min_level_weight` are dropped.
    """

    searches_sideways = False

    def __init__(
        self,
        cascade_path: str | Path | None = None,
        *,
        min_face_fraction: float = 0.25,
        max_face_fraction: float = 1.0,
        scale_factor: float = 1.2,
        near_margin: float = 0.25,
        near_scale_factor: float = 1.1,
        near_size_tolerance: float = 1.15,
        min_neighbors: int = 3,
        min_level_weight: float = 0.5,
        equalize: bool = True,
    ) -> None:
        if not 0.0 < min_face_fraction <= max_face_fraction <= 1.0:
            raise ValueError(
                "need 0 < min_face_fraction <= max_face_fraction <= 1, got "
                f"{min_face_fraction}, {max_face_fraction}"
            )
        if scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
        path = Path(cascade_path) if cascade_path else Path(cv2.data.haarcascades) / HAAR_CASCADE
        if not path.is_file():
            raise FileNotFoundError(f"Haar cascade not found: {path}")
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise ValueError(f"cannot load Haar cascade {path}")
        window = self.cascade.getOriginalWindowSize()
        self.window = int(max(window)) if window and max(window) > 0 else 24
        self.min_face_fraction = min_face_fraction
        self.max_face_fraction = max_face_fraction
        self.scale_factor = scale_factor
        self.near_margin = near_margin
        self.near_scale_factor = near_scale_factor
        self.near_size_tolerance = near_size_tolerance
        self.min_neighbors = min_neighbors
        self.min_level_weight = min_level_weight
        self.equalize = equalize

    def detect(self, frame: np.ndarray) -> Detections:
        """Faces in one frame; boxes in the frame's pixels."""
        height, width = frame.shape[:2]
        short = min(height, width)
        if short < self.window:
            return Detections.empty()
        scale = min(1.0, self.window / (self.min_face_fraction * short))
        max_side = self.max_face_fraction * short * scale
        return self._search(frame, scale, self.window, max_side, self.scale_factor)

    def detect_near(self, frame: np.ndarray, box: np.ndarray) -> Detections:
        """Faces of about `box`'s size [4] within a margin around it; boxes in frame pixels."""
        height, width = frame.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in box)
        side = max(x1 - x0, y1 - y0)
        if not math.isfinite(side) or side <= 0:
            return Detections.empty()
        pad = self.near_margin * side
        left, top = max(0, int(x0 - pad)), max(0, int(y0 - pad))
        right, bottom = min(width, int(math.ceil(x1 + pad))), min(height, int(math.ceil(y1 + pad)))
        if min(right - left, bottom - top) < self.window:
            return Detections.empty()
        scale = min(1.0, 1.1 * self.window / side)
        tolerance = self.near_size_tolerance
        found = self._search(
            frame[top:bottom, left:right],
            scale,
            max(self.window, side * scale / tolerance),
            side * scale * tolerance,
            self.near_scale_factor,
        )
        return found.mapped(1.0, (left, top))

    def _search(
        self, frame: np.ndarray, scale: float, min_side: float, max_side: float, factor: float
    ) -> Detections:
        height, width = frame.shape[:2]
        gray = to_gray(frame)
        if scale < 1.0:
            size = (max(self.window, round(width * scale)), max(self.window, round(height * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
            scale_x, scale_y = size[0] / width, size[1] / height
        else:
            scale_x, scale_y = 1.0, 1.0
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        min_px = max(self.window, int(min_side))
        max_px = max(min_px, min(int(math.ceil(max_side)), min(gray.shape)))
        objects, _, weights = self.cascade.detectMultiScale3(
            gray,
            scaleFactor=factor,
            minNeighbors=self.min_neighbors,
            minSize=(min_px, min_px),
            maxSize=(max_px, max_px),
            outputRejectLevels=True,
        )
        if len(objects) == 0:
            return Detections.empty()
        objects = np.asarray(objects, np.float32).reshape(-1, 4)
        weights = np.asarray(weights, np.float32).reshape(-1)
        keep = weights >= self.min_level_weight
        objects, weights = objects[keep], weights[keep]
        boxes = np.stack(
            [
                objects[:, 0] / scale_x,
                objects[:, 1] / scale_y,
                (objects[:, 0] + objects[:, 2]) / scale_x,
                (objects[:, 1] + objects[:, 3]) / scale_y,
            ],
            axis=1,
        )
        return Detections(boxes, _sigmoid((weights - 3.0) / 1.5))


def _import_optional(module: str, pip_name: str, purpose: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{purpose} needs the '{pip_name}' package, which is not installed: "
            f"pip install {pip_name}"
        ) from err


class MediaPipeFaceDetector:
    """MediaPipe BlazeFace: boxes, scores and 6 keypoints (eyes, nose tip, mouth centre, ears).

    Uses the legacy `mediapipe.solutions.face_detection` (model bundled in the package) or,
    given `model_path` to a BlazeFace `.tflite` file, the MediaPipe Tasks API.
    """

    searches_sideways = False

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        min_confidence: float = 0.5,
        full_range: bool = False,
    ) -> None:
        mp = _import_optional("mediapipe", "mediapipe", "MediaPipeFaceDetector")
        self._mp = mp
        self._tasks_detector = None
        self._legacy = None
        if model_path is not None:
            model_path = Path(model_path)
            if not model_path.is_file():
                raise FileNotFoundError(f"MediaPipe face model not found: {model_path}")
            vision = importlib.import_module("mediapipe.tasks.python.vision")
            base = importlib.import_module("mediapipe.tasks.python").BaseOptions
            options = vision.FaceDetectorOptions(
                base_options=base(model_asset_path=str(model_path)),
                min_detection_confidence=min_confidence,
            )
            self._tasks_detector = vision.FaceDetector.create_from_options(options)
            return
        solutions = getattr(mp, "solutions", None)
        if solutions is None or not hasattr(solutions, "face_detection"):
            raise MissingDependencyError(
                "this mediapipe build has no bundled face_detection solution; pass model_path= "
                "to a BlazeFace .tflite file you have downloaded yourself, or "
                "pip install 'mediapipe<0.10.30'"
            )
        self._legacy = solutions.face_detection.FaceDetection(
            model_selection=1 if full_range else 0, min_detection_confidence=min_confidence
        )

    def detect(self, frame: np.ndarray) -> Detections:
        """Faces in one frame; boxes and keypoints in the frame's pixels."""
        rgb = np.ascontiguousarray(to_rgb(frame))
        height, width = rgb.shape[:2]
        boxes, scores, points = [], [], []
        if self._tasks_detector is not None:
            image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
            for det in self._tasks_detector.detect(image).detections:
                box = det.bounding_box
                boxes.append(
                    [
                        box.origin_x,
                        box.origin_y,
                        box.origin_x + box.width,
                        box.origin_y + box.height,
                    ]
                )
                scores.append(det.categories[0].score if det.categories else 1.0)
                points.append([[kp.x * width, kp.y * height] for kp in det.keypoints])
        else:
            results = self._legacy.process(rgb)
            for det in results.detections or []:
                rel = det.location_data.relative_bounding_box
                x0, y0 = rel.xmin * width, rel.ymin * height
                boxes.append([x0, y0, x0 + rel.width * width, y0 + rel.height * height])
                scores.append(det.score[0] if det.score else 1.0)
                points.append(
                    [[kp.x * width, kp.y * height] for kp in det.location_data.relative_keypoints]
                )
        if not boxes:
            return Detections.empty()
        landmarks = np.asarray(points, np.float32) if all(len(p) == 6 for p in points) else None
        scheme = "mediapipe6" if landmarks is not None else None
        return Detections(np.asarray(boxes), np.asarray(scores), landmarks, scheme)


class DlibFaceDetector:
    """dlib's HOG face detector, with 68-point landmarks when given a shape-predictor file.

    The landmark model (e.g. shape_predictor_68_face_landmarks.dat) is never downloaded:
    pass its path as `landmark_model_path`. HOG needs faces of about 80 px or more; use
    `upsample` for smaller faces.
    """

    searches_sideways = False

    def __init__(
        self,
        landmark_model_path: str | Path | None = None,
        *,
        upsample: int = 0,
        score_offset: float = 0.0,
    ) -> None:
        try:
            dlib = importlib.import_module("dlib")
        except ImportError as err:
            raise MissingDependencyError(
                "DlibFaceDetector needs the 'dlib' package, which is not installed: pip install "
                "dlib; for landmarks, also give landmark_model_path= to a shape predictor file "
                "such as shape_predictor_68_face_landmarks.dat (it is never downloaded)"
            ) from err
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = None
        if landmark_model_path is not None:
            landmark_model_path = Path(landmark_model_path)
            if not landmark_model_path.is_file():
                raise FileNotFoundError(
                    f"dlib landmark model not found: {landmark_model_path} (download it yourself "
                    "and pass its path)"
                )
            self._predictor = dlib.shape_predictor(str(landmark_model_path))
        self.upsample = upsample
        self.score_offset = score_offset

    def detect(self, frame: np.ndarray) -> Detections:
        """Faces in one frame; boxes (and landmarks) in the frame's pixels."""
        gray = np.ascontiguousarray(to_gray(frame))
        rects, raw_scores, _ = self._detector.run(gray, self.upsample, self.score_offset)
        if len(rects) == 0:
            return Detections.empty()
        boxes = np.asarray([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32)
        landmarks, scheme = None, None
        if self._predictor is not None:
            shapes = [self._predictor(gray, r) for r in rects]
            landmarks = np.asarray(
                [[[s.part(i).x, s.part(i).y] for i in range(s.num_parts)] for s in shapes],
                np.float32,
            )
            scheme = f"dlib{landmarks.shape[1]}"
        return Detections(boxes, _sigmoid(np.asarray(raw_scores) * 2.0), landmarks, scheme)


# Where face-track clips (LRS2/LRS3 and the like: one speaker, tracked and centred in a small
# square frame) have the face, as fractions of the frame (x0, y0, x1, y1): the median Haar
# box over the shared LRS-style clips.
FACE_TRACK_BOX = (0.18, 0.02, 0.83, 0.67)


class FaceTrackDetector:
    """Haar first; on a frame where it finds no face (a head turn, a cut-off chin, blur), the
    face is where a face track puts it (FACE_TRACK_BOX) with a low score, so the track never
    loses the speaker and the lip finder places the mouth. For face-track corpora only: on
    footage where the face may be anywhere or absent, this would invent one."""

    # Turned heads and prior-placed faces put the mouth off a frontal box's centre line, so the
    # lip finder searches sideways too (data_prep.mouth.track_mouth).
    searches_sideways = True

    def __init__(self, prior_score: float = 0.2, **haar_options: Any) -> None:
        self.haar = HaarFaceDetector(**haar_options)
        self.prior_score = float(prior_score)

    def _prior(self, frame: np.ndarray) -> Detections:
        height, width = frame.shape[:2]
        box = np.asarray(FACE_TRACK_BOX, np.float32) * np.float32([width, height, width, height])
        return Detections(box[None], np.float32([self.prior_score]))

    def detect(self, frame: np.ndarray) -> Detections:
        found = self.haar.detect(frame)
        return found if len(found) else self._prior(frame)

    def detect_near(self, frame: np.ndarray, box: np.ndarray) -> Detections:
        return self.haar.detect_near(frame, box)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box [4] with each of boxes [N,4] -> [N]."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = max(0.0, float(box[2] - box[0])) * max(0.0, float(box[3] - box[1]))
    sides = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    areas = sides[:, 0] * sides[:, 1]
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def choose_face(
    detections: Detections,
    previous_box: np.ndarray | None,
    frame_shape: tuple[int, ...],
    *,
    min_iou: float = 0.1,
) -> int | None:
    """Which detection to follow: the largest, most central face when there is no previous box,
    else the one overlapping `previous_box` [4] most (None when none overlaps by `min_iou`)."""
    if len(detections) == 0:
        return None
    boxes = detections.boxes
    if previous_box is not None and np.all(np.isfinite(previous_box)):
        iou = box_iou(np.asarray(previous_box, np.float32), boxes)
        best = int(np.argmax(iou))
        return best if iou[best] >= min_iou else None
    height, width = frame_shape[:2]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    offset = np.hypot(centres[:, 0] - width / 2, centres[:, 1] - height / 2)
    centrality = 1.0 - offset / (0.5 * math.hypot(width, height))
    size = areas / max(1.0, width * height)
    score = size * (0.5 + 0.5 * centrality) * (0.5 + 0.5 * detections.scores)
    return int(np.argmax(score))
