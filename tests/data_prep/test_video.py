"""Video decoding: checked reads, resampling, error reasons, damaged-frame detection."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from data_prep.video import (
    REASONS,
    VideoClip,
    VideoError,
    corruption_scores,
    detect_corrupt_frames,
    iter_frames,
    probe_video,
    read_video,
)

# GRID s1 clips whose opening frames decode as grey/blocky garbage (found by scanning every
# frame of the 900 clips with detect_corrupt_frames): frames 0-11 of each; pbio7a also has
# smeared, blocky frames through the rest of the clip; pgwy8n has blocky frames 69-71.
GRID_S1_DAMAGED = {
    "bbizzn": range(12),
    "brwa4p": range(12),
    "brwg8p": range(12),
    "lgbf8n": range(12),
    "lrarzn": range(12),
    "pbio7a": range(12),
    "pbwx1s": range(12),
    "prii9a": range(12),
    "sbbh4p": range(12),
    "sran9s": range(12),
    "pgwy8n": range(69, 72),
}


def natural_frame(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth, textured RGB frame [H,W,3] with no block structure."""
    coarse = rng.uniform(40, 220, size=(height // 6 + 2, width // 6 + 2, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 3, size=(height, width, 3))
    return np.clip(smooth + grain, 0, 255).astype(np.uint8)


def write_video(
    path: Path,
    num_frames: int,
    fps: float = 25.0,
    size: tuple[int, int] = (64, 48),
    fourcc: str | None = None,
    levels: bool = False,
) -> Path:
    """Writes BGR test frames: a red disc on a textured background, or flat grey levels 4*i."""
    fourcc = fourcc or ("MJPG" if path.suffix == ".avi" else "mp4v")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"cannot write {path}"
    rng = np.random.default_rng(0)
    width, height = size
    for i in range(num_frames):
        if levels:
            frame = np.full((height, width, 3), (4 * i) % 256, np.uint8)
        else:
            frame = natural_frame(rng, height, width)[:, :, ::-1].copy()
            radius = max(2, min(size) // 5)
            cv2.circle(frame, (width // 2, height // 2), radius, (0, 0, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def assert_reason(excinfo: pytest.ExceptionInfo, reason: str, path: Path) -> None:
    err = excinfo.value
    assert err.reason == reason
    assert err.reason in REASONS
    assert err.path == str(path)
    assert str(path) in str(err) and reason in str(err)


def test_read_mp4_rgb(tmp_path):
    path = write_video(tmp_path / "clip.mp4", 30)
    clip = read_video(path)
    assert isinstance(clip, VideoClip)
    assert clip.frames.shape == (30, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert (clip.fps, clip.source_fps, clip.num_source_frames) == (25.0, 25.0, 30)
    assert (clip.width, clip.height, clip.path) == (64, 48, str(path))
    assert clip.warnings == () and not clip.fps_fallback
    centre = clip.frames[:, 22:26, 30:34].reshape(-1, 3).mean(axis=0)
    assert centre[0] > 180 and centre[1] < 80 and centre[2] < 80, "channels must be RGB"
    assert clip.duration_s == pytest.approx(1.2)


def test_read_avi_grayscale(tmp_path):
    path = write_video(tmp_path / "clip.avi", 20)
    colour = read_video(path)
    gray = read_video(path, grayscale=True)
    assert gray.frames.shape == (20, 48, 64, 1)
    expected = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in colour.frames])
    assert np.abs(gray.frames[..., 0].astype(int) - expected).max() <= 1


@pytest.mark.parametrize("suffix", [".avi", ".mov"])
def test_other_containers(tmp_path, suffix):
    path = write_video(tmp_path / f"clip{suffix}", 10, fourcc="MJPG")
    assert read_video(path).num_frames == 10


def test_mp4_at_60_fps_resampled(tmp_path):
    clip = read_video(write_video(tmp_path / "clip.mp4", 60, fps=60.0))
    assert clip.num_frames == 25 and clip.fps == 25.0 and clip.source_fps == 60.0


@pytest.mark.parametrize(("source_fps", "num_frames"), [(12.0, 24), (60.0, 60)])
def test_resample_to_25_by_nearest_frame(tmp_path, source_fps, num_frames):
    path = write_video(tmp_path / "clip.avi", num_frames, fps=source_fps, levels=True)
    clip = read_video(path, target_fps=25.0)
    assert clip.fps == 25.0 and clip.source_fps == source_fps
    assert clip.num_source_frames == num_frames
    assert clip.num_frames == pytest.approx(num_frames * 25.0 / source_fps, abs=1)
    levels = clip.frames.reshape(clip.num_frames, -1).mean(axis=1)
    for i, level in enumerate(levels):
        source = int(np.floor(i * source_fps / 25.0 + 0.5))
        assert level == pytest.approx(4 * source, abs=2), f"output frame {i}"


def test_no_resampling_within_one_percent_or_when_disabled(tmp_path):
    near = read_video(write_video(tmp_path / "near.avi", 10, fps=25.2), target_fps=25.0)
    assert near.num_frames == 10 and near.fps == pytest.approx(25.2)
    slow = read_video(write_video(tmp_path / "slow.avi", 12, fps=12.0), target_fps=None)
    assert slow.num_frames == 12 and slow.fps == 12.0


def test_max_frames(tmp_path):
    path = write_video(tmp_path / "clip.avi", 30, fps=12.0, levels=True)
    clip = read_video(path, target_fps=25.0, max_frames=7)
    assert clip.num_frames == 7 and clip.num_source_frames <= 5


@pytest.mark.parametrize("fps", [5000.0, 0.5])
def test_absurd_fps_falls_back_to_25(tmp_path, fps):
    suffix = ".mp4" if fps > 1000 else ".avi"
    path = write_video(tmp_path / f"clip{suffix}", 10, fps=fps)
    clip = read_video(path)
    assert clip.fps_fallback and "fps_fallback" in clip.warnings
    assert clip.fps == 25.0 and clip.source_fps == 25.0 and clip.num_frames == 10
    assert probe_video(path)["fps_fallback"]


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(VideoError) as excinfo:
        read_video(path)
    assert_reason(excinfo, "missing_file", path)
    assert isinstance(excinfo.value, ValueError)


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(VideoError) as excinfo:
        read_video(tmp_path)
    assert_reason(excinfo, "not_a_file", tmp_path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoError) as excinfo:
        read_video(path)
    assert_reason(excinfo, "empty_file", path)


def test_garbage_bytes_named_mp4(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError) as excinfo:
        read_video(path)
    assert_reason(excinfo, "unreadable", path)
    with pytest.raises(VideoError):
        probe_video(path)


def test_truncated_avi(tmp_path):
    full = write_video(tmp_path / "full.avi", 30)
    data = full.read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(VideoError) as excinfo:
        read_video(path)
    assert_reason(excinfo, "truncated", path)
    assert "30" in str(excinfo.value)


def test_slightly_short_avi_is_a_warning(tmp_path):
    full = write_video(tmp_path / "full.avi", 30)
    data = full.read_bytes()
    frame_bytes = len(data) // 30
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: data.rfind(b"idx1") - int(1.5 * frame_bytes)])
    clip = read_video(path)
    assert 27 <= clip.num_frames < 30 and "frame_count_mismatch" in clip.warnings


def test_truncated_mp4_without_index_is_unreadable(tmp_path):
    full = write_video(tmp_path / "full.mp4", 30)
    path = tmp_path / "cut.mp4"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(VideoError) as excinfo:
        read_video(path)
    assert_reason(excinfo, "unreadable", path)


def test_zero_frames(tmp_path):
    path = write_video(tmp_path / "none.avi", 0)
    with pytest.raises(VideoError) as excinfo:
        read_video(path)
    assert_reason(excinfo, "zero_frames", path)


def test_tiny_frames(tmp_path):
    path = write_video(tmp_path / "tiny.avi", 5, size=(16, 16))
    with pytest.raises(VideoError) as excinfo:
        read_video(path)
    assert_reason(excinfo, "too_small", path)
    assert read_video(path, min_side=16).frames.shape == (5, 16, 16, 3)


def test_huge_frames(tmp_path):
    path = write_video(tmp_path / "huge.avi", 3, size=(2000, 1500), levels=True)
    with pytest.raises(VideoError) as excinfo:
        read_video(path)
    assert_reason(excinfo, "too_large", path)
    assert "2000x1500" in str(excinfo.value)
    clip = read_video(path, max_pixels=2000 * 1500, grayscale=True)
    assert clip.frames.shape == (3, 1500, 2000, 1)
    with pytest.raises(VideoError) as excinfo:
        read_video(path, max_pixels=2000 * 1500, max_bytes=2000 * 1500 * 3 * 2)
    assert excinfo.value.reason == "too_large"


def test_probe_and_iter_frames(tmp_path):
    path = write_video(tmp_path / "clip.mp4", 12, fps=30.0)
    info = probe_video(path)
    assert (info["width"], info["height"], info["frame_count"]) == (64, 48, 12)
    assert info["fps"] == 30.0 and not info["fps_fallback"]
    assert info["duration_s"] == pytest.approx(0.4) and info["size_bytes"] > 0
    assert isinstance(info["codec"], str) and len(info["codec"]) == 4
    frames = list(iter_frames(path))
    assert len(frames) == 12 and frames[0].shape == (48, 64, 3)
    assert frames[0][24, 32, 2] > 180, "iter_frames yields OpenCV's BGR"
    with pytest.raises(VideoError):
        list(iter_frames(tmp_path / "missing.mp4"))


def test_video_error_rejects_unknown_reason():
    with pytest.raises(ValueError, match="unknown VideoError reason"):
        VideoError("x.mp4", "bad_vibes", "?")


def test_read_video_argument_checks(tmp_path):
    path = write_video(tmp_path / "clip.avi", 3)
    with pytest.raises(ValueError, match="target_fps"):
        read_video(path, target_fps=0)
    with pytest.raises(ValueError, match="max_frames"):
        read_video(path, max_frames=0)


def synthetic_frames() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    natural = np.stack([natural_frame(rng, 144, 176) for _ in range(4)])
    grey = np.full((2, 144, 176, 3), 128, np.uint8)
    grey[1] += rng.integers(0, 2, size=grey[1].shape, dtype=np.uint8)
    half_grey = natural[:2].copy()
    half_grey[:, :, 88:] = 128
    blocks = rng.integers(30, 230, size=(2, 18, 22, 3)).astype(np.uint8)
    blocky = np.stack([np.kron(b, np.ones((8, 8, 1), np.uint8)) for b in blocks])
    blocky = np.clip(blocky + rng.normal(0, 0.4, blocky.shape), 0, 255).astype(np.uint8)
    dark = np.full((1, 144, 176, 3), 3, np.uint8)
    return {
        "natural": natural,
        "grey": grey,
        "half_grey": half_grey,
        "blocky": blocky,
        "dark": dark,
    }


def test_detect_corrupt_frames_synthetic():
    frames = synthetic_frames()
    assert not detect_corrupt_frames(frames["natural"]).any()
    for name in ("grey", "half_grey", "blocky", "dark"):
        assert detect_corrupt_frames(frames[name]).all(), name
    mixed = np.concatenate([frames["natural"][:2], frames["blocky"][:1], frames["natural"][2:]])
    assert detect_corrupt_frames(mixed).tolist() == [False, False, True, False, False]
    gray = np.concatenate([frames["natural"], frames["blocky"]])[..., :1]
    assert detect_corrupt_frames(gray).tolist() == [False] * 4 + [True] * 2


def test_corruption_scores_measures():
    frames = synthetic_frames()
    natural = corruption_scores(frames["natural"])
    blocky = corruption_scores(frames["blocky"])
    grey = corruption_scores(frames["grey"])
    assert set(natural) == {"std", "grey_fraction", "blockiness"}
    assert natural["blockiness"].max() < 0.05 < 0.5 < blocky["blockiness"].min()
    assert grey["grey_fraction"].min() > 0.99 and natural["grey_fraction"].max() < 0.01
    assert all(v.dtype == np.float32 and v.shape == (4,) for v in natural.values())


def test_natural_video_after_compression_is_clean(tmp_path):
    clip = read_video(write_video(tmp_path / "clip.mp4", 8, size=(176, 144)))
    assert not detect_corrupt_frames(clip.frames).any()


@pytest.mark.needs_shared_data
def test_grid_mp4_and_original_mpg(shared_data):
    clip = read_video(shared_data / "grid/s1/video/bbaf2n.mp4")
    assert clip.frames.shape == (75, 288, 360, 3) and clip.fps == 25.0 and not clip.warnings
    original = read_video(shared_data / "grid/original_mpg/bbaf2n.mpg")
    assert original.frames.shape == (75, 288, 360, 3) and original.fps == 25.0
    info = probe_video(shared_data / "grid/original_mpg/bbaf2n.mpg")
    assert (info["width"], info["height"]) == (360, 288)


@pytest.mark.needs_shared_data
def test_grid_damaged_clips_flagged_clean_ones_not(shared_data):
    video_dir = shared_data / "grid/s1/video"
    for clip_id, damaged in GRID_S1_DAMAGED.items():
        flags = detect_corrupt_frames(read_video(video_dir / f"{clip_id}.mp4").frames)
        assert flags[list(damaged)].all(), clip_id
        if clip_id != "pbio7a":
            assert flags.sum() == len(damaged), clip_id
    clean = [p for p in sorted(video_dir.glob("*.mp4")) if p.stem not in GRID_S1_DAMAGED]
    for path in clean[::45]:
        flags = detect_corrupt_frames(read_video(path).frames)
        assert not flags.any(), f"{path.stem}: frames {np.flatnonzero(flags).tolist()}"


def damage(frame: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A frame spoilt the ways MPEG decoding fails: a lost slice (the rest of the picture
    mid-grey), concealed macroblocks (16x16 blocks flattened to their mean), or a lost
    reference (all grey)."""
    out = frame.copy()
    height, width = frame.shape[:2]
    if kind == "lost_slice":
        out[int(rng.integers(2, 8)) * 16 :] = 128
    elif kind == "macroblocks":
        top = int(rng.integers(0, 4)) * 16
        for y in range(top, height - 15, 16):
            for x in range(0, width - 15, 16):
                out[y : y + 16, x : x + 16] = out[y : y + 16, x : x + 16].mean(axis=(0, 1))
    else:
        out[:] = 128
    return out


@pytest.mark.needs_shared_data
def test_frames_damaged_on_purpose_are_found_and_no_others(shared_data, tmp_path):
    """Ground truth that does not come from the detector: clean GRID clips with frames
    damaged here, written to a video and decoded again."""
    rng = np.random.default_rng(7)
    clean = [
        p
        for p in sorted((shared_data / "grid/s1/video").glob("*.mp4"))
        if p.stem not in GRID_S1_DAMAGED
    ][::150]
    for path in clean:
        frames = read_video(path).frames
        spoilt = sorted(rng.choice(np.arange(5, len(frames) - 5), size=6, replace=False))
        for index, kind in zip(spoilt, ["lost_slice", "macroblocks", "grey"] * 2, strict=True):
            frames[index] = damage(frames[index], kind, rng)
        target = tmp_path / f"{path.stem}.avi"
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (360, 288))
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        flags = detect_corrupt_frames(read_video(target).frames)
        assert np.flatnonzero(flags).tolist() == [int(i) for i in spoilt], path.stem
