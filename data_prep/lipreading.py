"""Raw face videos -> mouth-region frame sequences in sharded TFRecords.

Per clip (in worker processes, no TensorFlow there): decode -> corrupt-frame check -> face
detection every k frames -> mouth box, smoothed over time -> fixed-size crop. The main
process writes one shard per block of clips; a shard is written under a temporary name and
followed by a sidecar `<shard>.json`, so a rerun skips every shard that has its sidecar and
matching checksum, and a killed run never leaves a shard that looks complete.

The clip record schema (writer and parser) is in data_prep/records.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import multiprocessing
import os
import random
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from data_prep.atomic import atomic_path, write_json_atomic
from data_prep.audio import SAMPLE_RATE, AudioError, align_to_video, read_audio
from data_prep.contact_sheet import write_contact_sheet
from data_prep.corpora.grid import (
    GRID_SPLITS,
    grid_id_to_words,
    grid_split_of,
    iter_grid,
    sentence_of,
    speaker_clip_ids,
)
from data_prep.corpora.lrs import iter_lrs
from data_prep.corpora.manifest import iter_manifest
from data_prep.corpora.transcripts import ClipSpec
from data_prep.detectors import DETECTORS, build_detector
from data_prep.errors import ConfigError, CorpusLayoutError, LipseqError, NotPreparedError
from data_prep.mouth import CROP_PRESETS, crop_mouths, roi_statistics, track_mouth
from data_prep.paths import project_version
from data_prep.video import VideoError, VideoSource, detect_corrupt_frames, read_video

SPLITS = ("train", "validation", "test")
# Problems found by a corpus reader that make a clip unusable; other problems are reported.
FATAL_READER_PROBLEMS = (
    "missing_video",
    "missing_alignment",
    "empty_alignment",
    "unreadable_alignment",
    "missing_transcript",
    "missing_text_line",
    "empty_transcript",
    "bad_manifest_row",
    "duplicate_id",
)
OUT_OF_SET = "out_of_set_characters"
# The corrupt-frame check looks at every 3rd frame, then at the neighbours of each damaged one:
# every damaged run of 3 or more frames is found whole, at about a third of the cost.
CORRUPT_CHECK_STRIDE = 3


# Settings that decide how preparation runs, not what a prepared clip holds.
HANDLING_ONLY = ("strict", "clips_per_shard")
# Settings that add to a clip: data prepared with them serves a config without them too
# (clips with their sound serve a lips-only model).
EXTRAS = ("audio",)


@dataclasses.dataclass
class LipreadingSettings:
    """Everything that decides what a prepared clip looks like (stored in the manifest)."""

    preset: str = "lipnet"
    target_fps: float = 25.0
    detector: str = "haar"
    detect_every: int = 10
    max_gap_frames: int = 25
    max_corrupt_fraction: float = 0.2
    min_frames: int = 5
    max_frames: int = 0  # 0: no limit
    # Frames with a longer side are scaled down while decoding (4K and long HD videos stay
    # in bounded memory); faces in such frames are still far larger than the crops.
    max_side: int = 1280
    strict: bool = False  # raise on the first bad clip instead of skipping it
    keep_out_of_set: bool = False  # True: drop unknown characters and keep the clip
    clips_per_shard: int = 64
    audio: bool = False  # also store each clip's audio track (16 kHz mono int16, aligned)
    # Which clips train, validate and test (data_prep/corpora/grid.py: grid_split_of):
    # "sentence" | "unseen" | "overlapped". Kept here, so in the manifest, because it decides
    # what each prepared split holds: training refuses a config that asks for another.
    split: str = "sentence"

    def __post_init__(self) -> None:
        # Checked here so a typo fails at start-up, not after the first clip is decoded.
        if self.preset not in CROP_PRESETS:
            raise ConfigError(
                f"unknown crop preset {self.preset!r}; choose from {', '.join(CROP_PRESETS)}"
            )
        if self.detector not in DETECTORS:
            raise ConfigError(
                f"unknown face detector {self.detector!r}; choose from {', '.join(DETECTORS)}"
            )
        if self.split not in GRID_SPLITS:
            raise ConfigError(f"unknown split {self.split!r}; choose from {', '.join(GRID_SPLITS)}")
        if self.target_fps <= 0 or self.detect_every < 1 or self.clips_per_shard < 1:
            raise ConfigError(
                "target_fps must be > 0, detect_every and clips_per_shard >= 1 "
                f"(got {self.target_fps}, {self.detect_every}, {self.clips_per_shard})"
            )

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> LipreadingSettings:
        """The settings named in an experiment's `config.data` (other keys are ignored)."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: data[key] for key in names if key in data})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def differences(self, prepared: Mapping[str, Any]) -> list[str]:
        """`key: ours vs prepared` for each setting that changes what a clip looks like and
        differs from `prepared` (a manifest's settings); keys an older manifest lacks pass."""
        ours = self.to_dict()
        return [
            f"{key}={ours[key]!r} (prepared with {prepared[key]!r})"
            for key in sorted(ours)
            if key not in HANDLING_ONLY
            and key in prepared
            and prepared[key] != ours[key]
            and not (key in EXTRAS and prepared[key])
        ]


@dataclasses.dataclass
class ClipResult:
    """What a worker returns for one clip: crops and metadata, or the reason it was skipped."""

    id: str
    split: str
    skip_reason: str | None = None
    skip_detail: str = ""
    crops: np.ndarray | None = None
    text: str = ""
    speaker: str = ""
    fps: float = 0.0
    roi_boxes: np.ndarray | None = None
    roi_confidence: np.ndarray | None = None
    roi_stats: dict | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    words: list = dataclasses.field(default_factory=list)
    num_source_frames: int = 0
    audio: np.ndarray | None = None  # int16 [S], sample 0 at frame 0
    audio_drift: float | None = None  # seconds the track ran past the video (negative: short)
    audio_problem: str | None = None  # why a clip kept for video has no audio (AUDIO_PROBLEMS)

    @property
    def num_frames(self) -> int:
        return 0 if self.crops is None else int(self.crops.shape[0])


class ClipSkipped(LipseqError, ValueError):
    """A clip that cannot be prepared, with a machine-readable reason (strict mode raises it)."""

    def __init__(self, clip_id: str, path: str, reason: str, detail: str = ""):
        detail = self.without_path(detail, path)
        # The id is said only where the file's name does not already say it.
        named = "" if clip_id == Path(path).stem else f" (clip {clip_id})"
        super().__init__(f"{path}: {reason}{': ' + detail if detail else ''}{named}")
        self.clip_id, self.path, self.reason, self.detail = clip_id, path, reason, detail


# One detector per thread: OpenCV's cascade classifier keeps search state inside itself, and
# two threads sharing one (the HTTP service prepares uploads in threads) trip its assertions.
_DETECTORS = threading.local()


def _detector(name: str):
    detectors = _DETECTORS.__dict__
    if name not in detectors:
        detectors[name] = build_detector(name)
    return detectors[name]


def corrupt_frames(frames: np.ndarray, stride: int = CORRUPT_CHECK_STRIDE) -> np.ndarray:
    """Damaged frames, bool [T], of frames [T,H,W,C] (video.detect_corrupt_frames) found by
    checking every `stride`-th frame and then the neighbours of each damaged one."""

    count = len(frames)
    corrupt = np.zeros(count, bool)
    checked = np.zeros(count, bool)
    index = np.arange(0, count, stride)
    flags = detect_corrupt_frames(frames[::stride])
    while len(index):
        checked[index] = True
        corrupt[index] = flags
        around = {n for t in index[flags] for n in (t - 1, t + 1) if 0 <= n < count}
        index = np.array(sorted(n for n in around if not checked[n]), dtype=int)
        flags = detect_corrupt_frames(frames[index]) if len(index) else index.astype(bool)
    return corrupt


def _track(frames: np.ndarray, settings: LipreadingSettings, detector=None):
    """The mouth track of decoded frames with the settings' detector (or `detector`, one of
    that kind a caller keeps, such as a live stream's) and limits."""
    detector = detector or _detector(settings.detector)
    return track_mouth(
        frames,
        detector,
        detect_every=settings.detect_every,
        max_gap_frames=settings.max_gap_frames,
        sideways=detector.searches_sideways,
    )


def _face_problem(track) -> str | None:
    """The skip reason of a track that lost the face (no_face, face_lost_too_long) or None."""
    return next((f for f in ("no_face", "face_lost_too_long") if f in track.flags), None)


@dataclasses.dataclass
class PreparedVideo:
    """One video through the clip core: its decoded clip, mouth crops and track."""

    clip: Any  # data_prep.video.VideoClip: frames at the target rate, fps, source fps
    crops: np.ndarray  # uint8 [T, h, w, C]
    track: Any  # data_prep.mouth.MouthTrack
    warnings: list[str]  # problems that did not stop the clip, e.g. corrupt_frames:<count>


@contextlib.contextmanager
def open_clip(video: str | os.PathLike | VideoSource, clip_id: str = "") -> Iterator[VideoSource]:
    """A video opened once for its header, frames and sound; a file that cannot be opened
    raises ClipSkipped with the decoder's reason. An open VideoSource passes through."""
    if isinstance(video, VideoSource):
        yield video
        return
    try:
        source = VideoSource(video)
    except VideoError as error:
        stem = clip_id or Path(video).stem
        raise ClipSkipped(stem, str(video), error.reason, error.detail) from error
    with source:
        yield source


def prepare_video(
    video,
    settings: LipreadingSettings,
    longest: int | None = None,
    clip_id: str = "",
    shortest: int | None = None,
) -> PreparedVideo:
    """The one clip-preparation core of `lipseq prepare` and of every inference front door:
    decode, refuse what cannot be read (ClipSkipped with its reason), track the mouth, crop.
    `video` is a path or a VideoSource the caller opened (open_clip) to read its sound too.

    Refusals: the decoder's reasons (data_prep.video.REASONS, or unreadable), too_long (more
    than `longest` frames at the target rate, found after decoding one frame more),
    too_short (under `shortest`, the fewest frames the reading model can use: inference's
    front door), too_few_frames (under settings.min_frames), corrupt_frames (over
    settings.max_corrupt_fraction damaged), no_face and face_lost_too_long.
    """
    path = video.path if isinstance(video, VideoSource) else Path(video)
    clip_id = clip_id or path.stem

    def refuse(reason: str, detail: str = "") -> ClipSkipped:
        return ClipSkipped(clip_id, str(path), reason, detail)

    max_frames = settings.max_frames or None
    if longest is not None:
        max_frames = min(max_frames or longest + 1, longest + 1)
    try:
        with open_clip(video, clip_id) as source:
            clip = read_video(
                source,
                target_fps=settings.target_fps,
                max_frames=max_frames,
                max_side=settings.max_side or None,
            )
    except VideoError as error:
        raise refuse(error.reason, error.detail) from error
    except (cv2.error, OSError, EOFError) as error:  # the decoder or the file failed
        raise refuse("unreadable", f"{type(error).__name__}: {error}") from error
    count = len(clip.frames)
    if longest is not None and count > longest:
        raise refuse("too_long", f"longer than {longest / settings.target_fps:g} s")
    if shortest is not None and count < shortest:
        fps = settings.target_fps
        raise refuse(
            "too_short",
            f"{count} frame{'' if count == 1 else 's'} ({count / fps:.2f} s), this model needs "
            f"at least {shortest} ({shortest / fps:.2f} s)",
        )
    if count < settings.min_frames:
        raise refuse("too_few_frames", f"{count} frames, at least {settings.min_frames} needed")
    warnings = []
    corrupt = corrupt_frames(clip.frames)
    if corrupt.mean() > settings.max_corrupt_fraction:
        raise refuse("corrupt_frames", f"{int(corrupt.sum())} of {count} frames damaged")
    if corrupt.any():
        warnings.append(f"corrupt_frames:{int(corrupt.sum())}")
    crops, track = track_and_crop(clip.frames, settings)
    if problem := _face_problem(track):
        detected = int(track.detected.sum())
        raise refuse(problem, f"face found on {detected} detection frames")
    return PreparedVideo(clip, crops, track, warnings)


def track_and_crop(frames: np.ndarray, settings: LipreadingSettings, detector=None) -> tuple:
    """Decoded frames [T, H, W, C] -> (mouth crops [T, h, w, C], MouthTrack), as `prepare` makes
    them; frames where the face was lost have NaN boxes in the track (and filler crops)."""
    track = _track(frames, settings, detector)
    preset = CROP_PRESETS[settings.preset]
    crops = np.zeros((len(frames), preset.height, preset.width, preset.channels), np.uint8)
    usable = np.isfinite(track.mouth_boxes).all(axis=1)
    if usable.all():  # the usual clip: no copy of every frame (frames[usable] would make one)
        crops[:] = crop_mouths(frames, track.mouth_boxes, preset)
    elif usable.any():
        crops[usable] = crop_mouths(frames[usable], track.mouth_boxes[usable], preset)
    return crops, track


def process_clip(spec: ClipSpec, split: str, settings: LipreadingSettings) -> ClipResult:
    """Prepares one corpus clip; never raises for bad input (the result says why it was
    skipped). A bug in the code (any other exception) is raised, not reported as a bad clip.
    """
    result = ClipResult(id=spec.id, split=split, text=spec.transcript, speaker=spec.speaker or "")

    def skip(reason: str, detail: str = "") -> ClipResult:
        result.skip_reason, result.skip_detail = reason, detail
        return result

    for problem in spec.problems:
        name = problem.split(":", 1)[0]
        if name in FATAL_READER_PROBLEMS or (name == OUT_OF_SET and not settings.keep_out_of_set):
            return skip(name, problem)
        result.warnings.append(problem)
    if not spec.transcript.strip():
        return skip("empty_transcript")
    try:
        with open_clip(spec.video_path, spec.id) as source:
            prepared = prepare_video(source, settings, clip_id=spec.id)
            result.warnings.extend(prepared.warnings)
            if settings.audio:
                _add_audio(result, source, prepared.clip)
    except ClipSkipped as skipped:
        return skip(skipped.reason, skipped.detail)
    clip, track = prepared.clip, prepared.track
    result.fps = float(clip.fps)
    result.num_source_frames = int(clip.num_source_frames)
    result.crops = prepared.crops
    result.roi_boxes = track.mouth_boxes.astype(np.float32)
    result.roi_confidence = track.confidence.astype(np.float32)
    result.roi_stats = roi_statistics(track)
    scale = settings.target_fps / clip.source_fps if clip.source_fps else 1.0
    result.words = [
        (int(round(start * scale)), int(round(end * scale)), word)
        for start, end, word in (spec.words or [])
    ]
    return result


def _add_audio(result: ClipResult, source: VideoSource, clip) -> None:
    """Stores the clip's audio aligned to its frames; a clip without usable audio keeps its
    video and is flagged with the reason (audio tasks skip it)."""

    try:
        track = read_audio(source, SAMPLE_RATE)
    except AudioError as error:
        result.audio_problem = error.reason
        result.warnings.append(f"{error.reason}:{error.detail}")
        return
    result.audio, result.audio_drift = align_to_video(track, len(clip.frames), clip.fps)


def worker_init() -> None:
    """Initialises a preparation worker process: OpenCV on one thread (processes parallelise)."""

    cv2.setNumThreads(1)


def _worker(task: tuple[ClipSpec, str, LipreadingSettings]) -> ClipResult:
    spec, split, settings = task
    return process_clip(spec, split, settings)


def clip_example(result: ClipResult) -> dict[str, Any]:
    """The record features of one prepared clip (schema: data_prep/records.py)."""
    # Late: records loads TensorFlow, which the spawned preparation workers never need.
    from data_prep import records

    return records.clip_example(
        result.id,
        result.text,
        result.crops,
        speaker=result.speaker,
        fps=result.fps,
        roi_boxes=result.roi_boxes,
        roi_confidence=result.roi_confidence,
        words=result.words,
        audio=result.audio,
    )


@dataclasses.dataclass
class _Shard:
    split: str
    index: int
    count: int
    specs: list[ClipSpec]

    @property
    def name(self) -> str:
        return f"{self.split}-{self.index:05d}-of-{self.count:05d}.tfrecord"


def plan_shards(specs: Iterable[ClipSpec], split_of, clips_per_shard: int) -> list[_Shard]:
    """Groups clips by split (sorted by id) into fixed blocks; the plan depends on ids only."""
    by_split: dict[str, list[ClipSpec]] = {}
    for spec in specs:
        by_split.setdefault(split_of(spec), []).append(spec)
    shards = []
    for split in sorted(by_split, key=lambda s: (SPLITS.index(s) if s in SPLITS else 99, s)):
        clips = sorted(by_split[split], key=lambda s: s.id)
        count = max(1, math.ceil(len(clips) / clips_per_shard))
        for i in range(count):
            block = clips[i * clips_per_shard : (i + 1) * clips_per_shard]
            shards.append(_Shard(split, i, count, block))
    return shards


def _sidecar(output_dir: Path, shard: _Shard) -> Path:
    return output_dir / f"{shard.name}.json"


def _finished(output_dir: Path, shard: _Shard) -> dict | None:
    """The sidecar of a shard finished by an earlier run, if it is complete and intact."""
    # Late: records loads TensorFlow, which the spawned preparation workers never need.
    from data_prep import records

    sidecar, path = _sidecar(output_dir, shard), output_dir / shard.name
    if not (sidecar.is_file() and path.is_file()):
        return None
    try:
        info = json.loads(sidecar.read_text())
    except json.JSONDecodeError:
        return None
    if info.get("clip_ids") != [s.id for s in shard.specs]:
        return None
    if info.get("sha256") != records.sha256_file(path):
        return None
    return info


class Progress:
    """A tqdm bar over clips, with frames/s and skipped count; log lines when not a terminal."""

    def __init__(self, total: int, log_every_seconds: float = 15.0):
        self.bar = tqdm(total=total, unit="clip", dynamic_ncols=True, mininterval=1.0)
        self.started = time.monotonic()
        self.frames = 0
        self.skipped = 0
        self.done = 0
        self.total = total
        self.last_log = self.started
        self.log_every = log_every_seconds

    def update(self, result: ClipResult) -> None:
        self.done += 1
        self.frames += result.num_source_frames or result.num_frames
        self.skipped += result.skip_reason is not None
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self.bar.set_postfix(
            frames_per_s=f"{self.frames / elapsed:.0f}", skipped=self.skipped, refresh=False
        )
        self.bar.update(1)
        now = time.monotonic()
        if now - self.last_log >= self.log_every or self.done == self.total:
            rate = self.done / elapsed
            eta = (self.total - self.done) / rate if rate else 0.0
            logging.info(
                "prepared %d/%d clips (%.1f clips/s, %.0f frames/s, %d skipped), ETA %.0fs",
                self.done,
                self.total,
                rate,
                self.frames / elapsed,
                self.skipped,
                eta,
            )
            self.last_log = now

    def close(self) -> dict:
        self.bar.close()
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return {
            "seconds": round(elapsed, 2),
            "clips_per_second": round(self.done / elapsed, 2),
            "frames_per_second": round(self.frames / elapsed, 1),
        }


def _results(tasks, workers: int):
    if workers <= 1:
        worker_init()
        for task in tasks:
            yield _worker(task)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=worker_init) as pool:
        yield from pool.imap(_worker, tasks, chunksize=1)


def clip_entry(result: ClipResult) -> dict:
    """The manifest entry of a kept clip: id, frames, text, ROI statistics, warnings, audio."""
    entry = {"id": result.id, "num_frames": result.num_frames, "text": result.text}
    if result.roi_stats is not None:
        entry["roi"] = result.roi_stats
    if result.warnings:
        entry["warnings"] = result.warnings
    if result.audio is not None:
        entry["audio"] = {"samples": int(len(result.audio)), "drift_seconds": result.audio_drift}
    elif result.audio_problem:
        entry["audio_problem"] = result.audio_problem
    return entry


def audio_sums(kept: list[ClipResult]) -> dict[str, Any] | None:
    """Sums of samples / 32768 and of their squares over the clips that have audio."""
    tracks = [r.audio.astype(np.float64) / 32768.0 for r in kept if r.audio is not None]
    if not tracks:
        return None
    return {
        "sum": [float(sum(t.sum() for t in tracks))],
        "sum_squares": [float(sum((t * t).sum() for t in tracks))],
        "count": int(sum(len(t) for t in tracks)),
    }


def pixel_sums(crops: np.ndarray) -> dict[str, Any]:
    """Per-channel sums of pixel/255 and of its square, from a histogram of the uint8 crops."""
    pixels = crops.reshape(-1, crops.shape[-1])
    counts = np.stack([np.bincount(pixels[:, c], minlength=256) for c in range(pixels.shape[1])])
    values = np.arange(256) / 255.0
    return {"sum": counts @ values, "sum_squares": counts @ values**2, "count": pixels.shape[0]}


def add_sums(sums: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not sums:
        return None
    return {
        "sum": np.sum([s["sum"] for s in sums], axis=0).tolist(),
        "sum_squares": np.sum([s["sum_squares"] for s in sums], axis=0).tolist(),
        "count": int(sum(s["count"] for s in sums)),
    }


def prepare_lipreading(
    specs: Sequence[ClipSpec],
    output_dir: str | os.PathLike,
    settings: LipreadingSettings | None = None,
    workers: int = 1,
    split_of=None,
    dataset_name: str = "",
    extra_manifest: dict | None = None,
    contact_sheet_clips: int = 12,
    seed: int = 0,
) -> dict:
    """Prepares every clip into sharded TFRecords + manifest.json; returns the manifest.

    Bad clips are skipped with a named reason in the manifest (or raise ClipSkipped when
    settings.strict). Finished shards from an earlier run of the same plan are reused. Splits
    come from `split_of(spec)`, by default the rule `settings.split` names (`grid_split_of`).
    """
    # Late: records loads TensorFlow, which the spawned preparation workers never need.
    from data_prep import records

    settings = settings or LipreadingSettings()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / records.MANIFEST_NAME).unlink(missing_ok=True)
    split_of = split_of or grid_split_of(settings.split)
    shards = plan_shards(specs, split_of, settings.clips_per_shard)
    sidecars = {shard.name: _finished(output_dir, shard) for shard in shards}
    todo = [shard for shard in shards if sidecars[shard.name] is None]
    reused = len(shards) - len(todo)
    if reused:
        logging.info("resuming: %d of %d shards already finished", reused, len(shards))

    rng = random.Random(seed)
    all_ids = [spec.id for shard in shards for spec in shard.specs]
    sheet_ids = set(rng.sample(all_ids, min(contact_sheet_clips, len(all_ids))))
    sheet_samples: dict[str, tuple[np.ndarray, str]] = {}

    tasks = [(spec, shard.split, settings) for shard in todo for spec in shard.specs]
    progress = Progress(len(tasks))
    pending: dict[str, list[ClipResult]] = {shard.name: [] for shard in todo}
    shard_of_clip = {spec.id: shard for shard in todo for spec in shard.specs}
    try:
        for result in _results(tasks, workers):
            progress.update(result)
            if result.skip_reason and settings.strict:
                spec = next(s for s in shard_of_clip[result.id].specs if s.id == result.id)
                raise ClipSkipped(
                    result.id, str(spec.video_path), result.skip_reason, result.skip_detail
                )
            if result.skip_reason:
                logging.warning(
                    "skipping %s: %s %s", result.id, result.skip_reason, result.skip_detail
                )
            if result.id in sheet_ids and result.crops is not None:
                sheet_samples[result.id] = (result.crops, result.text)
            shard = shard_of_clip[result.id]
            pending[shard.name].append(result)
            if len(pending[shard.name]) == len(shard.specs):
                sidecars[shard.name] = _write_shard(output_dir, shard, pending.pop(shard.name))
    finally:
        timing = progress.close()

    manifest = _manifest(output_dir, shards, sidecars, settings, dataset_name, timing)
    if extra_manifest:
        manifest.update(extra_manifest)
    if sheet_samples:
        sheet = write_contact_sheet(
            [(clip_id, *sheet_samples[clip_id]) for clip_id in sorted(sheet_samples)],
            output_dir / "contact_sheet.png",
        )
        manifest["contact_sheet"] = sheet.name
    records.write_manifest(output_dir, manifest)
    return manifest


def _write_shard(output_dir: Path, shard: _Shard, results: list[ClipResult]) -> dict:
    # Late: TensorFlow, which the spawned preparation workers never need.
    import tensorflow as tf

    from data_prep import records

    order = {spec.id: i for i, spec in enumerate(shard.specs)}
    results.sort(key=lambda r: order[r.id])
    kept = [r for r in results if r.skip_reason is None]
    path = output_dir / shard.name
    with atomic_path(path) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
        for result in kept:
            writer.write(records.serialize(clip_example(result)))
    sums = [pixel_sums(r.crops) for r in kept]
    info = {
        "clip_ids": [spec.id for spec in shard.specs],
        "split": shard.split,
        "sha256": records.sha256_file(path),
        "num_examples": len(kept),
        "num_frames": int(sum(r.num_frames for r in kept)),
        "clips": [clip_entry(r) for r in kept],
        "skipped": [
            {"id": r.id, "reason": r.skip_reason, "detail": r.skip_detail}
            for r in results
            if r.skip_reason
        ],
        "pixel_sums": add_sums(sums),
        "audio_sums": audio_sums(kept),
        "shape": list(kept[0].crops.shape[1:]) if kept else None,
    }
    write_json_atomic(_sidecar(output_dir, shard), info)
    return info


def _manifest(output_dir, shards, sidecars, settings, dataset_name, timing) -> dict:
    splits: dict[str, dict] = {}
    train_sums, train_audio_sums = [], []
    shape = None
    for shard in shards:
        info = sidecars[shard.name]
        entry = splits.setdefault(
            shard.split,
            {
                "num_examples": 0,
                "num_frames": 0,
                "num_skipped": 0,
                "files": [],
                "clips": [],
                "skipped": [],
            },
        )
        entry["num_examples"] += info["num_examples"]
        entry["num_frames"] += info["num_frames"]
        entry["num_skipped"] += len(info["skipped"])
        entry["files"].append(
            {"path": shard.name, "sha256": info["sha256"], "num_examples": info["num_examples"]}
        )
        entry["clips"].extend(info["clips"])
        entry["skipped"].extend(info["skipped"])
        shape = shape or info["shape"]
        if shard.split == "train" and info["pixel_sums"]:
            train_sums.append(info["pixel_sums"])
        if shard.split == "train" and info.get("audio_sums"):
            train_audio_sums.append(info["audio_sums"])
    normalisation = normalisation_of(add_sums(train_sums))
    audio = audio_summary(splits, add_sums(train_audio_sums)) if settings.audio else None
    skipped_reasons: dict[str, int] = {}
    for entry in splits.values():
        for item in entry["skipped"]:
            skipped_reasons[item["reason"]] = skipped_reasons.get(item["reason"], 0) + 1
    return {
        "task": "lipreading",
        "dataset": dataset_name,
        "version": project_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": settings.to_dict(),
        "frame_encoding": "raw_uint8",
        "frame_shape": shape,
        "normalisation": normalisation,
        "audio": audio,
        "skipped_by_reason": skipped_reasons,
        "timing": timing,
        "splits": splits,
        "record_format": "data_prep/records.py (clip record)",
    }


def normalisation_of(totals: dict[str, Any] | None) -> dict[str, Any] | None:
    """The training split's per-channel pixel mean and deviation from its sums (None: none)."""
    if totals is None:
        return None
    mean = np.array(totals["sum"]) / totals["count"]
    std = np.sqrt(np.maximum(np.array(totals["sum_squares"]) / totals["count"] - mean**2, 1e-12))
    return {
        "mean": mean.round(6).tolist(),
        "std": std.round(6).tolist(),
        "scale": "pixel / 255",
        "computed_on": "train",
    }


def audio_summary(splits: dict, train_sums: dict | None) -> dict:
    """Audio statistics of the kept clips: how many have it, why the others do not, the drift
    between audio and video, and the training split's sample mean and deviation."""

    clips = [clip for entry in splits.values() for clip in entry["clips"]]
    drifts = np.array([c["audio"]["drift_seconds"] for c in clips if "audio" in c], np.float64)
    problems: dict[str, int] = {}
    for clip in clips:
        if "audio_problem" in clip:
            problems[clip["audio_problem"]] = problems.get(clip["audio_problem"], 0) + 1
    summary = {
        "sample_rate": SAMPLE_RATE,
        "sample_format": "int16 mono, sample 0 at frame 0, num_frames / fps seconds",
        "clips_with_audio": int(len(drifts)),
        "clips_without_audio": problems,
        "drift_seconds": (
            {
                "mean": round(float(drifts.mean()), 4),
                "mean_abs": round(float(np.abs(drifts).mean()), 4),
                "max_abs": round(float(np.abs(drifts).max()), 4),
            }
            if len(drifts)
            else None
        ),
        "normalisation": None,
    }
    if train_sums:
        mean = train_sums["sum"][0] / train_sums["count"]
        variance = train_sums["sum_squares"][0] / train_sums["count"] - mean**2
        summary["normalisation"] = {
            "mean": round(mean, 8),
            "std": round(float(np.sqrt(max(variance, 1e-12))), 8),
            "scale": "sample / 32768",
            "computed_on": "train",
        }
    return summary


VIDEO_DATASETS = ("grid", "lrs", "manifest")


def corpus_clips(dataset: str, input_path: str | os.PathLike, max_clips: int = 0) -> list[ClipSpec]:
    """The clips of a raw video corpus (`dataset`: grid, lrs or manifest), sorted by id; GRID
    clips of several speakers are named `s<N>/<id>` (the speakers share sentences)."""

    readers = {"grid": iter_grid, "lrs": iter_lrs, "manifest": iter_manifest}
    if dataset not in readers:
        raise ConfigError(f"unknown video dataset {dataset!r}; expected one of {VIDEO_DATASETS}")
    if not input_path or not Path(input_path).exists():
        raise NotPreparedError(f"video corpus not found: {input_path or '(no input_dir given)'}")
    specs = readers[dataset](input_path)
    if dataset == "grid":
        specs = speaker_clip_ids(specs)
    specs = sorted(specs, key=lambda spec: spec.id)
    return specs[:max_clips] if max_clips else specs


def evaluation_clips(path: str | os.PathLike, dataset: str = "grid") -> list[ClipSpec]:
    """The clips of raw videos to score: a manifest file, or a directory in any corpus layout
    (`dataset` is tried first). A GRID clip without an alignment takes its transcript from its
    id (bbaf2n: bin blue at f two now)."""

    path = Path(path)
    if path.is_file():
        specs = corpus_clips("manifest", path)
    else:
        layouts = [dataset] + [d for d in ("grid", "lrs") if d != dataset and d != "manifest"]
        for layout in layouts:
            try:
                specs = corpus_clips(layout, path)
                break
            except CorpusLayoutError:
                if layout == layouts[-1]:
                    raise
    named = []
    for spec in specs:
        if "missing_alignment" in spec.problems and spec.video_path:
            try:
                words = grid_id_to_words(sentence_of(spec))
            except ValueError:
                named.append(spec)
                continue
            text = " ".join(words)
            problems = [p for p in spec.problems if p != "missing_alignment"]
            spec = dataclasses.replace(
                spec, transcript=text, raw_transcript=text, problems=problems
            )
        named.append(spec)
    return named


def prepare_lipreading_corpus(data: Mapping[str, Any], seed: int = 0, split_of=None) -> dict:
    """Prepares the corpus an experiment's `config.data` names; returns the manifest.

    Reads data.dataset under data.input_dir and writes data.prepared_dir with the settings of
    `LipreadingSettings.from_config(data)`; a corpus with no clips is an error.
    """
    settings = LipreadingSettings.from_config(data)
    if not data["prepared_dir"]:
        raise ConfigError("config.data.prepared_dir is empty: say where to write the clips")
    specs = corpus_clips(data["dataset"], data["input_dir"], data["max_clips"])
    if not specs:
        raise NotPreparedError(
            f"no {data['dataset']} clips found under {data['input_dir']} "
            "(check config.data.input_dir and config.data.dataset)"
        )
    logging.info("%s: %d clips found under %s", data["dataset"], len(specs), data["input_dir"])
    return prepare_lipreading(
        specs,
        data["prepared_dir"],
        settings,
        workers=data["workers"],
        dataset_name=data["dataset"],
        seed=seed,
        split_of=split_of,
        extra_manifest={"input_dir": str(data["input_dir"])},
    )
