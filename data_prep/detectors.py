"""The face detectors preparation can use, by the name `config.data.detector` gives.

Each implements data_prep.faces.FaceDetector (and RegionFaceDetector where it can search
around a known face); the name is stored with the preparation settings, so inference uses
the detector the training data was prepared with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from data_prep.faces import (
    DlibFaceDetector,
    FaceDetector,
    FaceTrackDetector,
    HaarFaceDetector,
    MediaPipeFaceDetector,
)
from data_prep.landmarks import FaceMeshDetector

DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "haar": HaarFaceDetector,
    "facetrack": FaceTrackDetector,
    "landmarks": FaceMeshDetector,
    "mediapipe": MediaPipeFaceDetector,
    "dlib": DlibFaceDetector,
}


def build_detector(name: str = "haar", **kwargs: Any) -> FaceDetector:
    """A face detector by registry name (see DETECTORS) with its keyword options."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown face detector {name!r}; choose from {sorted(DETECTORS)}"
        ) from None
    return factory(**kwargs)
