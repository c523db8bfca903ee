"""Face detectors, face choice, mouth tracking, crops and the lips-present check."""

import sys

import cv2
import numpy as np
import pytest

from data_prep.detectors import build_detector
from data_prep.faces import (
    Detections,
    FaceDetector,
    HaarFaceDetector,
    MissingDependencyError,
    RegionFaceDetector,
    box_iou,
    choose_face,
)
from data_prep.mouth import (
    CROP_PRESETS,
    LANDMARK_MOUTH_WIDTH,
    MOUTH_CENTRE_Y,
    MouthTrack,
    crop_mouths,
    lips_present,
    lips_present_score,
    roi_statistics,
    track_mouth,
)
from data_prep.video import detect_corrupt_frames, read_video

SKIN = (200, 150, 120)
LIPS = (190, 70, 80)
FACE_BOX = np.array([80.0, 40.0, 240.0, 200.0], np.float32)


def stamp(frames: np.ndarray) -> np.ndarray:
    """Writes each frame's index into its top-left pixels so fake detectors can read it."""
    for t in range(len(frames)):
        frames[t, 0, 0, 0], frames[t, 0, 1, 0] = t % 256, t // 256
    return frames


def frame_index(frame: np.ndarray) -> int:
    return int(frame[0, 0, 0]) + 256 * int(frame[0, 1, 0])


class ScriptedDetector:
    """Finds `box(t)` on frame t unless t is in `miss`; records the frames it was asked about."""

    searches_sideways = False  # every detector declares it (data_prep.faces.FaceDetector)

    def __init__(self, box=FACE_BOX, miss=(), landmarks=None, scheme=None):
        self.box = box if callable(box) else (lambda t: box)
        self.miss = set(miss)
        self.landmarks = landmarks
        self.scheme = scheme
        self.calls: list[int] = []

    def detect(self, frame: np.ndarray) -> Detections:
        t = frame_index(frame)
        self.calls.append(t)
        if t in self.miss:
            return Detections.empty()
        landmarks = None if self.landmarks is None else self.landmarks[None]
        return Detections(self.box(t)[None], np.array([0.9]), landmarks, self.scheme)


class RegionScriptedDetector(ScriptedDetector):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.near_calls: list[int] = []

    def detect_near(self, frame: np.ndarray, box: np.ndarray) -> Detections:
        self.near_calls.append(frame_index(frame))
        return super().detect(frame)


def face_frames(
    count: int = 50, lips_dy: float = 0.0, size=(240, 320), lips_dx: float = 0.0
) -> np.ndarray:
    """RGB frames [T,H,W,3] with a skin face in FACE_BOX and lips near the prior mouth centre
    shifted by (`lips_dx`, `lips_dy`) px, with a dark line between the lips."""
    height, width = size
    frame = np.full((height, width, 3), (40, 120, 200), np.uint8)
    x0, y0, x1, y1 = FACE_BOX.astype(int)
    cv2.ellipse(
        frame,
        ((x0 + x1) // 2, (y0 + y1) // 2),
        ((x1 - x0) // 2, (y1 - y0) // 2),
        0,
        0,
        360,
        SKIN,
        -1,
    )
    cx = int((x0 + x1) / 2 + lips_dx)
    cy = int(y0 + MOUTH_CENTRE_Y * (y1 - y0) + lips_dy)
    cv2.ellipse(frame, (cx, cy), (30, 12), 0, 0, 360, LIPS, -1)
    cv2.line(frame, (cx - 26, cy), (cx + 26, cy), (70, 30, 35), 2)
    rng = np.random.default_rng(0)
    frames = np.stack([frame] * count).astype(np.int16)
    frames += rng.integers(-3, 4, size=frames.shape, dtype=np.int16)
    return stamp(np.clip(frames, 0, 255).astype(np.uint8))


def test_detections_contract():
    det = Detections(np.zeros((2, 4)), np.ones(2))
    assert det.boxes.dtype == np.float32 and det.scores.dtype == np.float32 and len(det) == 2
    assert det.landmarks is None and len(Detections.empty()) == 0
    with pytest.raises(ValueError):
        Detections(np.zeros((2, 4)), np.ones(3))
    with pytest.raises(ValueError):
        Detections(np.zeros((1, 4)), np.ones(1), landmarks=np.zeros((2, 5, 2)))
    moved = Detections(np.array([[10, 10, 20, 20]]), [1.0], np.array([[[15, 15]]])).mapped(
        0.5, (100, 0)
    )
    assert moved.boxes.tolist() == [[120, 20, 140, 40]]
    assert moved.landmarks.tolist() == [[[130, 30]]]


def test_box_iou():
    box = np.array([0, 0, 10, 10], np.float32)
    iou = box_iou(box, np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    assert iou == pytest.approx([1.0, 1 / 3, 0.0])


def test_choose_face_first_frame_prefers_large_and_central():
    boxes = np.array([[0, 0, 40, 40], [120, 80, 200, 160], [250, 10, 310, 70]], np.float32)
    det = Detections(boxes, np.full(3, 0.9))
    assert choose_face(det, None, (240, 320, 3)) == 1
    assert choose_face(Detections.empty(), None, (240, 320, 3)) is None


def test_choose_face_follows_previous_box():
    boxes = np.array([[120, 80, 200, 160], [10, 10, 60, 60]], np.float32)
    det = Detections(boxes, np.array([0.9, 0.99]))
    assert choose_face(det, np.array([12, 12, 62, 62]), (240, 320)) == 1
    assert choose_face(det, np.array([250, 180, 300, 230]), (240, 320)) is None


def test_haar_detector_on_blank_and_tiny_frames():
    detector = build_detector("haar")
    assert isinstance(detector, HaarFaceDetector)
    assert isinstance(detector, FaceDetector) and isinstance(detector, RegionFaceDetector)
    blank = detector.detect(np.full((120, 160, 3), 90, np.uint8))
    assert len(blank) == 0 and blank.boxes.shape == (0, 4)
    assert len(detector.detect(np.zeros((10, 10), np.uint8))) == 0
    assert len(detector.detect_near(np.zeros((120, 160, 1), np.uint8), FACE_BOX / 2)) == 0


def test_build_detector_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown face detector"):
        build_detector("viola")


@pytest.mark.parametrize(("name", "package"), [("mediapipe", "mediapipe"), ("dlib", "dlib")])
def test_missing_optional_detector_names_pip_package(monkeypatch, name, package):
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(MissingDependencyError, match=f"pip install {package}") as excinfo:
        build_detector(name)
    assert isinstance(excinfo.value, ImportError)
    if name == "dlib":
        assert "landmark_model_path" in str(excinfo.value)
        assert "never downloaded" in str(excinfo.value)


def test_track_detects_sparsely_and_holds_between():
    frames = face_frames(50)
    detector = ScriptedDetector()
    track = track_mouth(frames, detector, detect_every=10)
    assert isinstance(track, MouthTrack)
    assert len(detector.calls) == 5 and track.detected.sum() == 5
    assert track.mouth_boxes.shape == (50, 4) and track.mouth_boxes.dtype == np.float32
    assert track.face_boxes.shape == (50, 4) and track.confidence.dtype == np.float32
    assert track.flags == [] and track.ok and track.lost_frames == 0 and track.has_box.all()
    assert ((track.confidence > 0.5) & (track.confidence <= 1)).all()
    np.testing.assert_allclose(track.face_boxes, np.tile(FACE_BOX, (50, 1)), atol=1e-3)
    centre_x = (track.mouth_boxes[:, 0] + track.mouth_boxes[:, 2]) / 2
    np.testing.assert_allclose(centre_x, 160.0, atol=0.5)


def test_track_uses_detect_near_after_first_detection():
    detector = RegionScriptedDetector()
    track_mouth(face_frames(40), detector, detect_every=10)
    assert len(detector.calls) == 4 and len(detector.near_calls) == 3


def test_track_retries_neighbouring_frames():
    detector = ScriptedDetector(miss={4, 5, 14, 23, 24, 25})
    track = track_mouth(face_frames(30), detector, detect_every=10)
    assert track.detected.sum() == 3 and track.lost_frames == 0 and track.ok
    assert detector.calls == [4, 5, 3, 14, 15, 24, 25, 23, 26]
    assert np.flatnonzero(track.detected).tolist() == [3, 15, 26]


def test_track_flags_face_lost_too_long():
    frames = face_frames(100)
    detector = ScriptedDetector(miss=set(range(20, 70)))
    track = track_mouth(frames, detector, detect_every=10, max_gap_frames=25)
    assert "face_lost_too_long" in track.flags and not track.ok
    assert track.lost_frames == 50 and track.longest_gap == 50
    assert np.isnan(track.mouth_boxes[20:70]).all() and not track.has_box[20:70].any()
    assert track.has_box[:20].all() and track.has_box[70:].all()
    assert (track.confidence[20:70] == 0).all()
    with pytest.raises(ValueError, match="no usable mouth box"):
        crop_mouths(frames, track.mouth_boxes, "lipnet")


def test_short_loss_is_bridged_with_lower_confidence():
    detector = ScriptedDetector(miss=set(range(20, 40)))
    track = track_mouth(face_frames(80), detector, detect_every=10, max_gap_frames=25)
    assert track.ok and track.lost_frames == 20 and track.has_box.all()
    assert track.confidence[30] < track.confidence[5]


def test_track_without_any_face():
    detector = ScriptedDetector(miss=set(range(30)))
    track = track_mouth(face_frames(30), detector, detect_every=10)
    assert track.flags[0] == "no_face" and not track.ok
    assert np.isnan(track.mouth_boxes).all() and (track.confidence == 0).all()
    assert roi_statistics(track)["frames_with_box"] == 0


def test_track_follows_a_moving_face():
    def box(t):
        return FACE_BOX + np.array([2.0 * t, 0, 2.0 * t, 0], np.float32)

    track = track_mouth(face_frames(60), ScriptedDetector(box=box), detect_every=10, refine=False)
    centre_x = (track.mouth_boxes[:, 0] + track.mouth_boxes[:, 2]) / 2
    expected = 160.0 + 2.0 * np.arange(60)
    assert np.abs(centre_x - expected)[6:52].max() < 1.0


def test_mouth_refined_towards_the_lips():
    prior_y = FACE_BOX[1] + MOUTH_CENTRE_Y * (FACE_BOX[3] - FACE_BOX[1])
    for dy in (-12.0, 12.0):
        track = track_mouth(face_frames(20, lips_dy=dy), ScriptedDetector(), detect_every=10)
        centre_y = (track.mouth_boxes[:, 1] + track.mouth_boxes[:, 3]) / 2
        assert np.abs(centre_y - (prior_y + dy)).max() < 4.0, dy
        assert (track.evidence > 0.5).all()


@pytest.mark.parametrize("dx,dy", [(-30.0, 8.0), (30.0, -8.0)])
def test_sideways_search_finds_lips_beside_the_prior(dx, dy):
    prior_x = (FACE_BOX[0] + FACE_BOX[2]) / 2
    prior_y = FACE_BOX[1] + MOUTH_CENTRE_Y * (FACE_BOX[3] - FACE_BOX[1])
    frames = face_frames(20, lips_dy=dy, lips_dx=dx)
    for colour in (True, False):
        clip = frames if colour else stamp(frames.mean(axis=3, keepdims=True).astype(np.uint8))
        track = track_mouth(clip, ScriptedDetector(), detect_every=10, sideways=True)
        centre = (track.mouth_boxes[:, :2] + track.mouth_boxes[:, 2:]) / 2
        assert np.abs(centre[:, 0] - (prior_x + dx)).max() < 5.0, (dx, colour)
        assert np.abs(centre[:, 1] - (prior_y + dy)).max() < 5.0, (dy, colour)
    # Up and down only (the default): the box stays at the face's centre line.
    track = track_mouth(frames, ScriptedDetector(), detect_every=10)
    centre_x = (track.mouth_boxes[:, 0] + track.mouth_boxes[:, 2]) / 2
    assert np.abs(centre_x - prior_x).max() < 1.0


def test_mouth_from_landmarks():
    landmarks = np.zeros((68, 2), np.float32)
    landmarks[:, 0], landmarks[:, 1] = 100.0, 100.0
    landmarks[48:68] = [150.0, 170.0]
    landmarks[48], landmarks[54] = [130.0, 170.0], [170.0, 170.0]
    detector = ScriptedDetector(landmarks=landmarks, scheme="dlib68")
    track = track_mouth(face_frames(20), detector, detect_every=10)
    centre = (track.mouth_boxes[:, :2] + track.mouth_boxes[:, 2:]) / 2
    np.testing.assert_allclose(centre, np.tile([150.0, 169.5], (20, 1)), atol=0.6)
    width = track.mouth_boxes[:, 2] - track.mouth_boxes[:, 0]
    np.testing.assert_allclose(width, 40.0 * LANDMARK_MOUTH_WIDTH, atol=0.1)


def test_track_and_crop_grayscale_frames():
    frames = face_frames(20)
    gray = stamp(np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])[..., None])
    track = track_mouth(gray, ScriptedDetector(), detect_every=10)
    colour = track_mouth(frames, ScriptedDetector(), detect_every=10)
    assert track.ok and track.has_box.all()
    np.testing.assert_allclose(track.mouth_boxes, colour.mouth_boxes, atol=3.0)
    crops = crop_mouths(gray, track.mouth_boxes, "gray96")
    assert crops.shape == (20, 96, 96, 1) and all(lips_present(c) for c in crops)


def test_track_input_checks():
    with pytest.raises(ValueError, match="uint8"):
        track_mouth(np.zeros((3, 20, 20, 3), np.float32), ScriptedDetector())
    with pytest.raises(ValueError, match="no frames"):
        track_mouth(np.zeros((0, 20, 20, 3), np.uint8), ScriptedDetector())


@pytest.mark.parametrize("preset", sorted(CROP_PRESETS))
def test_crop_presets(preset):
    frames = face_frames(6)
    track = track_mouth(frames, ScriptedDetector(), detect_every=3)
    crops = crop_mouths(frames, track.mouth_boxes, preset)
    spec = CROP_PRESETS[preset]
    assert crops.shape == (6, spec.height, spec.width, spec.channels) and crops.dtype == np.uint8
    assert all(lips_present(c) for c in crops)
    assert CROP_PRESETS["lipnet"].channels == 3 and CROP_PRESETS["gray96"].channels == 1


def test_crop_pads_by_edge_replication():
    frame = np.zeros((60, 80, 3), np.uint8)
    frame[:, :40] = (255, 0, 0)
    frame[:, 40:] = (0, 0, 255)
    box = np.array([[-30.0, 10.0, 10.0, 30.0]], np.float32)
    crop = crop_mouths(frame[None], box, "lipnet")[0]
    assert crop.shape == (50, 100, 3)
    assert (crop[:, :60, 0] > 250).all() and (crop[:, :60, 2] < 5).all()
    gray = crop_mouths(frame[None, :, :, :1], box, "gray96")
    assert gray.shape == (1, 96, 96, 1)


def test_crop_argument_checks():
    frames = face_frames(2)
    boxes = np.tile(np.array([130, 150, 190, 180], np.float32), (2, 1))
    with pytest.raises(ValueError, match="unknown crop preset"):
        crop_mouths(frames, boxes, "lipnet2")
    with pytest.raises(ValueError, match=r"\[2,4\]"):
        crop_mouths(frames, boxes[:1], "lipnet")
    with pytest.raises(ValueError, match="grayscale"):
        crop_mouths(frames[..., :1], boxes, "lipnet")


def test_lips_present_on_synthetic_crops():
    frames = face_frames(1)
    cy = int(FACE_BOX[1] + MOUTH_CENTRE_Y * (FACE_BOX[3] - FACE_BOX[1]))
    box = np.array([[138.5, cy - 10.7, 181.5, cy + 10.7]], np.float32)
    # Shifts of one lip-region height/width (1.4x the lips' box), onto nose, chin and cheek.
    height = 1.4 * (box[0, 3] - box[0, 1])
    width = 1.4 * (box[0, 2] - box[0, 0])
    for preset in ("lipnet", "gray96"):
        assert lips_present(crop_mouths(frames, box, preset)[0]), preset
        for shift in ([0, -height, 0, -height], [0, height, 0, height], [width, 0, width, 0]):
            crop = crop_mouths(frames, box + np.array(shift, np.float32), preset)[0]
            assert not lips_present(crop), (preset, shift)
    flat = np.full((50, 100, 3), SKIN, np.uint8)
    assert lips_present_score(flat) <= 1.0
    with pytest.raises(ValueError):
        lips_present_score(np.zeros((4, 4, 3), np.uint8))


def test_roi_statistics():
    track = track_mouth(face_frames(20), ScriptedDetector(miss={15}), detect_every=10)
    stats = roi_statistics(track)
    assert stats["num_frames"] == 20 and stats["frames_with_box"] == 20
    assert stats["detected_frames"] == 2 and stats["lost_frames"] == 0
    assert 0 < stats["confidence_min"] <= stats["confidence_mean"] + 1e-6 <= 1 + 1e-6
    assert stats["centre_x_mean"] == pytest.approx(160.0, abs=0.5)


def test_roi_statistics_known_answers():
    """Box statistics over the frames with a usable box only: a lost frame (NaN) and a frame
    of zero confidence are left out of the means and spreads."""
    boxes = np.array([[10, 20, 30, 30], [14, 20, 38, 34], [0, 0, 0, 0], [np.nan] * 4], np.float32)
    track = MouthTrack(
        mouth_boxes=boxes,
        face_boxes=boxes.copy(),
        confidence=np.array([1.0, 0.5, 0.0, 0.0], np.float32),
        detected=np.array([True, False, False, False]),
        lost_frames=1,
        flags=["low_confidence"],
        longest_gap=1,
    )
    stats = roi_statistics(track)
    assert (stats["num_frames"], stats["frames_with_box"], stats["detected_frames"]) == (4, 2, 1)
    assert (stats["lost_frames"], stats["longest_gap"]) == (1, 1)
    assert stats["flags"] == ["low_confidence"]
    assert stats["confidence_mean"] == pytest.approx(0.375)
    assert stats["confidence_min"] == 0.0
    # centres x 20 and 26, y 25 and 27; widths 20 and 24; heights 10 and 14
    expected = {"centre_x": (23, 3), "centre_y": (26, 1), "width": (22, 2), "height": (12, 2)}
    for key, (mean, std) in expected.items():
        assert (stats[f"{key}_mean"], stats[f"{key}_std"]) == pytest.approx((mean, std)), key


def grid_sample(shared_data, count: int = 30):
    paths = sorted((shared_data / "grid/s1/video").glob("*.mp4"))
    assert len(paths) >= count
    return paths[:: len(paths) // count][:count]


def shifted(boxes: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Boxes [T,4] moved by dx mouth widths and dy mouth heights."""
    width = (boxes[:, 2] - boxes[:, 0])[:, None]
    height = (boxes[:, 3] - boxes[:, 1])[:, None]
    return boxes + np.hstack([dx * width, dy * height, dx * width, dy * height])


@pytest.mark.needs_shared_data
def test_haar_finds_the_grid_face(shared_data):
    frames = read_video(shared_data / "grid/s1/video/bbaf2n.mp4", max_frames=1).frames
    detector = HaarFaceDetector()
    found = detector.detect(frames[0])
    assert len(found) >= 1
    box = found.boxes[choose_face(found, None, frames[0].shape)]
    assert 60 < box[0] < 120 and 80 < box[1] < 130 and 120 < box[2] - box[0] < 200
    assert found.scores.max() > 0.8
    near = detector.detect_near(frames[0], box)
    assert len(near) >= 1 and box_iou(box, near.boxes).max() > 0.6


@pytest.mark.needs_shared_data
def test_grid_boxes_and_lips(shared_data):
    detector = HaarFaceDetector()
    with_box = total = lips_ok = lips_total = 0
    moves = {
        "nose (up 1.4 lip heights)": (0, -1.4),
        "chin (down 1.4)": (0, 1.4),
        "cheek (left 1.4 widths)": (-1.4, 0),
        "cheek (right 1.4 widths)": (1.4, 0),
    }
    rejected = {name: [] for name in moves}
    for path in grid_sample(shared_data):
        clip = read_video(path)
        track = track_mouth(clip.frames, detector)
        assert track.ok, (path.stem, track.flags)
        assert track.detected.sum() >= 5, path.stem
        with_box += int(track.has_box.sum())
        total += track.num_frames
        usable = np.flatnonzero(track.has_box & ~detect_corrupt_frames(clip.frames))
        frames, boxes = clip.frames[usable], track.mouth_boxes[usable]
        for preset in ("lipnet", "gray96"):
            crops = crop_mouths(frames[::2], boxes[::2], preset)
            lips_ok += sum(lips_present(c) for c in crops)
            lips_total += len(crops)
        for name, (dx, dy) in moves.items():
            crops = crop_mouths(frames[::5], shifted(boxes[::5], dx, dy), "lipnet")
            rejected[name].extend(not lips_present(c) for c in crops)
    assert with_box / total >= 0.99
    assert lips_ok / lips_total >= 0.99, f"lips found in {lips_ok}/{lips_total} crops"
    for name, verdicts in rejected.items():
        assert np.mean(verdicts) >= 0.97, f"{name}: only {np.mean(verdicts):.1%} rejected"


@pytest.mark.needs_shared_data
def test_grid_original_mpeg1(shared_data):
    clip = read_video(shared_data / "grid/original_mpg/lwae8n.mpg")
    track = track_mouth(clip.frames, HaarFaceDetector())
    assert track.ok and track.has_box.all()
    crops = crop_mouths(clip.frames, track.mouth_boxes, "lipnet")
    assert np.mean([lips_present(c) for c in crops]) >= 0.97


@pytest.mark.parametrize("miss", [(), tuple(range(30, 60))])
def test_track_and_crop_fills_only_frames_without_a_box(monkeypatch, miss):
    """Every frame with a mouth box gets crop_mouths' crop of it, whether the clip has boxes
    throughout (cropped without a copy of the frames) or loses the face for longer than the
    allowed gap (those frames get zero crops)."""
    from data_prep import lipreading

    frames = stamp(face_frames(80))
    monkeypatch.setattr(lipreading, "_detector", lambda name: ScriptedDetector(miss=miss))
    settings = lipreading.LipreadingSettings(preset="gray80", detect_every=10, max_gap_frames=25)
    crops, track = lipreading.track_and_crop(frames, settings)
    usable = np.isfinite(track.mouth_boxes).all(axis=1)
    assert usable.all() == (not miss) and usable.any()
    expected = crop_mouths(frames[usable], track.mouth_boxes[usable], "gray80")
    np.testing.assert_array_equal(crops[usable], expected)
    assert not crops[~usable].any()
