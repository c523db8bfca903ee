"""Live lip reading: camera frames streamed over a WebSocket, read in overlapping windows as
they arrive, and the transcript sent back as it grows.

    session = LiveSession(export, function)
    session.add(message_bytes)          # one frame: decoded and buffered (cheap)
    update = session.step()             # off the event loop, every hop: the latest window
    last = session.step(final=True)     # on stop: everything up to the last frame

Protocol of GET /v1/live (query `mode`, ctc_greedy by default, `grammar`, and `model`, the
service's default lip reader when absent): the server first sends {"type": "ready", "model",
"fps", "window_seconds", "hop_seconds", "mode"}; an unknown `model` gets an error message
(unknown_model, with the names served) and close code 1008. Each binary
message from the client is one frame: its capture time in milliseconds (float64, little
endian, from any clock that starts with the stream) then a JPEG or PNG picture. A text
message {"type": "stop"} ends the stream: the rest is read and a "final" update sent before
the server closes (1000). Updates are {"type": "update" | "final", "text", "words" (newly
final words), "tentative" (words the next window may still change), "pieces", "gaps",
"final_until", "covered_until" (stream seconds), "lag" (seconds from the arrival of the last
frame covered to this update), "seconds" (prepare, model, words of this step)}.
Bad input gets {"type": "error", "error": reason, "detail"} and a close code: 1007 for a
frame that does not decode, 1009 for a frame over the size limit, 1008 for a stream over the
time limit or a message that is not a frame or a stop, 1013 when the service is full.

The windows are the long-video ones (pipelines/inference/long_video.py: 3 s overlapping by
1 s, pieces where the face was followed, gaps where it was lost), read every hop instead of
every 2 s: a window keeps for good the words whose centre lies at least
`final_margin_seconds` (1 s) before its end and shows the later ones as tentative until a
window that sees them with more context takes them. Until a whole window has arrived,
everything is tentative. Face detections are kept per frame, so each step detects only on
the frames that arrived since the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import struct
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

import cv2
import numpy as np
from starlette.websockets import WebSocketDisconnect

from data_prep.detectors import build_detector
from data_prep.lipreading import track_and_crop
from data_prep.video import scaled_size
from pipelines.inference.lipreading import PreparedInput
from pipelines.inference.long_video import Windowing, read_run, runs

LOG = logging.getLogger(__name__)
HEADER = struct.Struct("<d")  # a frame's capture time in ms, before its picture

# WebSocket close codes (RFC 6455 section 7.4.1).
CLOSE_NORMAL, CLOSE_POLICY, CLOSE_BAD_DATA, CLOSE_TOO_BIG = 1000, 1008, 1007, 1009
CLOSE_SERVER_ERROR, CLOSE_TRY_LATER = 1011, 1013


@dataclass(frozen=True)
class LiveSettings:
    """Window and overlap as the long-video reader's; `hop_seconds` between reads (a multiple
    of the export's detect_every frames keeps each window's detection frames those of the
    last one); how far from the newest frame words become final; limits on one frame's
    bytes and a session's length."""

    windowing: Windowing = Windowing()
    hop_seconds: float = 0.4
    # Words become final once their centre is this far from the newest frame. GRID's model
    # reads a word at a window's very end poorly: four clips streamed back to back gave 54 %
    # WER at the long-video half-overlap (0.5 s), 17 % at 1 s (BUILD.md, the live path).
    final_margin_seconds: float = 1.0
    max_frame_bytes: int = 1 << 20
    max_seconds: float = 300.0


class LiveError(Exception):
    """A stream the service refuses: machine-readable reason, detail and WebSocket close code."""

    def __init__(self, reason: str, detail: str, code: int):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.code = reason, detail, code


def default_mode(export) -> str | None:
    """ctc_greedy where the export has it (the fastest reader with word times), else its own."""
    return "ctc_greedy" if "ctc_greedy" in export.modes() else None


def decode_frame(message: bytes, max_bytes: int, max_side: int) -> tuple[float, np.ndarray]:
    """(capture ms, uint8 RGB frame scaled to at most max_side) of one binary message."""
    if len(message) > max_bytes:
        raise LiveError(
            "too_large", f"a frame of {len(message)} bytes is over {max_bytes}", CLOSE_TOO_BIG
        )
    if len(message) <= HEADER.size:
        raise LiveError(
            "bad_frame", "a frame is 8 bytes of capture time then a JPEG or PNG", CLOSE_BAD_DATA
        )
    (capture_ms,) = HEADER.unpack_from(message)
    if not np.isfinite(capture_ms):
        raise LiveError("bad_frame", f"capture time {capture_ms} is not a number", CLOSE_BAD_DATA)
    data = np.frombuffer(message, np.uint8, offset=HEADER.size)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise LiveError("bad_frame", "the picture is not a JPEG or PNG image", CLOSE_BAD_DATA)
    height, width = image.shape[:2]
    size = scaled_size(width, height, max_side)  # as the long-video reader scales frames
    if size != (width, height):
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return float(capture_ms), cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class CachedDetector:
    """The export's face detector, remembering its answer per frame picture: windows overlap,
    so a detection frame of one window is usually one of the next (see LiveSettings)."""

    def __init__(self, name: str, capacity: int):
        self.detector = build_detector(name)
        self.searches_sideways = self.detector.searches_sideways
        self.capacity = capacity
        self.found: OrderedDict[bytes, object] = OrderedDict()
        self.calls = 0

    def detect(self, frame: np.ndarray):
        key = hashlib.blake2b(np.ascontiguousarray(frame), digest_size=16).digest()
        if key not in self.found:
            self.calls += 1
            self.found[key] = self.detector.detect(frame)
            if len(self.found) > self.capacity:
                self.found.popitem(last=False)
        return self.found[key]


class FrameBuffer:
    """The latest `size` frames by stream index (capture time x fps), with their arrival
    times. A late or repeated frame is dropped; a missing one repeats the frame before it."""

    def __init__(self, fps: float, size: int):
        self.fps, self.size = fps, size
        self.frames: deque[np.ndarray] = deque(maxlen=size)
        self.arrived: deque[float] = deque(maxlen=size)
        self.first_ms: float | None = None
        self.end = 0  # index after the newest frame
        self.lock = threading.Lock()

    def add(self, capture_ms: float, frame: np.ndarray) -> bool:
        """True when the frame was kept."""
        if self.first_ms is None:
            self.first_ms = capture_ms
        index = int(round((capture_ms - self.first_ms) * self.fps / 1000.0))
        if index < self.end:
            return False
        now = time.monotonic()
        with self.lock:
            if self.frames and self.frames[-1].shape != frame.shape:
                self.frames.clear()  # the camera changed size: a window holds one size
                self.arrived.clear()
            missing = min(index - self.end, self.size) if self.frames else 0
            for _ in range(missing):
                self.frames.append(self.frames[-1])
                self.arrived.append(now)
            self.frames.append(frame)
            self.arrived.append(now)
            self.end = index + 1
        return True

    def window(self) -> tuple[int, np.ndarray, float]:
        """(index of the first frame, frames [T, H, W, C], arrival of the last) now."""
        with self.lock:
            frames, arrived, end = list(self.frames), self.arrived[-1], self.end
        return end - len(frames), np.stack(frames), arrived


def _shifted(words: list[dict], offset: float) -> list[dict]:
    return [
        w | {"start": round(w["start"] + offset, 3), "end": round(w["end"] + offset, 3)}
        for w in words
    ]


class LiveSession:
    """One stream: its frames, the words made final so far, and the window reader."""

    def __init__(self, export, function, settings: LiveSettings | None = None):
        self.export, self.function = export, function
        self.settings = settings or LiveSettings()
        self.prep = export.settings
        self.fps = float(self.prep.target_fps)
        windowing = self.settings.windowing
        self.size = max(1, int(round(windowing.window_seconds * self.fps)))
        self.overlap = int(round(windowing.overlap_seconds * self.fps))
        self.hop = max(1, int(round(self.settings.hop_seconds * self.fps)))
        self.margin = int(round(self.settings.final_margin_seconds * self.fps))
        self.shortest_piece = windowing.shortest_piece(export)
        self.buffer = FrameBuffer(self.fps, self.size)
        self.detector = CachedDetector(self.prep.detector, capacity=2 * self.size)
        self.words: list[dict] = []  # final
        self.pieces: list[dict] = []
        self.gaps: list[dict] = []
        self.final_until = 0  # frames before it are read for good
        self.read_until = 0  # the end of the last window read

    def describe(self, mode: str, model: str | None = None) -> dict:
        return {
            "type": "ready",
            "model": model,
            "mode": mode,
            "fps": self.fps,
            "window_seconds": self.size / self.fps,
            "hop_seconds": self.hop / self.fps,
        }

    def add(self, message: bytes) -> None:
        """One binary message: decoded and buffered; LiveError on bad input or past the limit."""
        windowing = self.settings.windowing
        capture_ms, frame = decode_frame(message, self.settings.max_frame_bytes, windowing.max_side)
        self.buffer.add(capture_ms, frame)
        if self.buffer.end > self.settings.max_seconds * self.fps:
            detail = f"the stream is over the limit of {self.settings.max_seconds:g} s"
            raise LiveError("too_long", detail, CLOSE_POLICY)

    def due(self) -> bool:
        """A hop of new frames since the last read."""
        return self.buffer.end - self.read_until >= self.hop

    def step(self, final: bool = False) -> dict | None:
        """Reads the latest window: the update to send (None before any frame, except the
        final one, which always comes)."""
        began = time.monotonic()
        seconds = {"prepare": 0.0, "model": 0.0, "words": 0.0}
        if not self.buffer.frames:
            return self._update(final, [], [], 0, began, seconds) if final else None
        start, frames, arrived = self.buffer.window()
        end = start + len(frames)
        # Words whose centre lies in [keep_from, keep_to) become final; later ones tentative.
        keep_from = max(self.final_until, start)
        keep_to = end if final else end - self.margin if len(frames) == self.size else start
        keep_to = max(keep_to, keep_from)
        crops, track = track_and_crop(frames, self.prep, self.detector)
        seconds["prepare"] = time.monotonic() - began
        usable = np.isfinite(track.mouth_boxes).all(axis=1)
        kept, tentative, lost = [], [], ~usable
        for first, last in runs(usable):
            if last - first < self.shortest_piece:
                lost[first:last] = True
                continue
            offset = (start + first) / self.fps
            words = _shifted(read_run(self, crops[first:last], self.fps, seconds), offset)
            centres = [(w["start"] + w["end"]) / 2 * self.fps for w in words]
            run_kept = [w for w, c in zip(words, centres, strict=True) if keep_from <= c < keep_to]
            tentative += [w for w, c in zip(words, centres, strict=True) if c >= keep_to]
            self._add_piece(start, first, last, keep_from, keep_to, track, run_kept)
            kept += run_kept
        self._add_gaps(start, lost, keep_from, keep_to)
        new = self._keep(kept)
        self.final_until, self.read_until = keep_to, end
        return self._update(final, new, tentative, end, arrived, seconds)

    # read_run calls the session as it calls a VideoTranscriber: on batched crops and lengths.
    def __call__(self, frames: np.ndarray, lengths: np.ndarray) -> dict:
        crops = np.asarray(frames)[0, : int(lengths[0])]
        out = self.export.run(self.function, PreparedInput(crops, self.fps))
        return {key: np.asarray(value)[None] for key, value in out.items()}

    def _keep(self, kept: list[dict]) -> list[dict]:
        """Makes words final in the order spoken (a word never starts before the last one)."""
        for word in kept:
            if self.words and word["start"] < self.words[-1]["start"]:
                word["start"] = self.words[-1]["start"]
                word["end"] = max(word["end"], word["start"])
            self.words.append(word)
        return kept

    def _add_piece(self, start, first, last, keep_from, keep_to, track, words) -> None:
        """The final part of a run of followed frames, joined to the piece it continues."""
        begin, stop = max(start + first, keep_from), min(start + last, keep_to)
        if stop <= begin:
            return
        confidence = float(track.confidence[begin - start : stop - start].mean())
        inside = [w["word"] for w in words]
        previous = self.pieces[-1] if self.pieces else None
        if previous and abs(previous["end"] * self.fps - begin) < 0.5:
            frames = (previous["end"] - previous["start"]) * self.fps
            weight = frames / (frames + stop - begin)
            previous["roi_confidence"] = round(
                weight * previous["roi_confidence"] + (1 - weight) * confidence, 3
            )
            previous["end"] = round(stop / self.fps, 3)
            previous["text"] = " ".join([previous["text"], *inside]).strip()
            return
        self.pieces.append(
            {
                "start": round(begin / self.fps, 3),
                "end": round(stop / self.fps, 3),
                "text": " ".join(inside),
                "roi_confidence": round(confidence, 3),
            }
        )

    def _add_gaps(self, start: int, lost: np.ndarray, keep_from: int, keep_to: int) -> None:
        """The final frames where no face was followed, joined to the gap they continue."""
        for first, last in runs(lost[keep_from - start : keep_to - start]):
            begin, stop = (keep_from + first) / self.fps, (keep_from + last) / self.fps
            if self.gaps and abs(self.gaps[-1]["end"] - begin) < 0.5 / self.fps:
                self.gaps[-1]["end"] = round(stop, 3)
            else:
                self.gaps.append({"start": round(begin, 3), "end": round(stop, 3)})

    def _update(self, final, new, tentative, end, arrived, seconds) -> dict:
        if self.words:  # tentative words never start before the last final one
            floor = self.words[-1]["start"]
            for word in tentative:
                word["start"] = max(word["start"], floor)
                word["end"] = max(word["end"], word["start"])
        return {
            "type": "final" if final else "update",
            "text": " ".join(w["word"] for w in self.words + tentative),
            "words": new,
            "tentative": tentative,
            "pieces": self.pieces,
            "gaps": self.gaps,
            "final_until": round(self.final_until / self.fps, 3),
            "covered_until": round(end / self.fps, 3),
            "lag": round(time.monotonic() - arrived, 3),
            "seconds": {key: round(value, 4) for key, value in seconds.items()},
        }


async def refuse(websocket, error: LiveError, extra: dict | None = None) -> None:
    """The reason as a message (with `extra` keys), then the close code (the socket may be
    gone already)."""
    message = {"type": "error", "error": error.reason, "detail": error.detail} | (extra or {})
    try:
        await websocket.send_json(message)
        await websocket.close(error.code, error.reason)
    except (RuntimeError, OSError):  # the client left first
        pass


def _stop_message(text: str) -> None:
    """Checks that a text message is {"type": "stop"} (LiveError otherwise)."""
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    if not isinstance(message, dict) or message.get("type") != "stop":
        detail = 'text messages are {"type": "stop"}; frames are binary'
        raise LiveError("bad_message", detail, CLOSE_POLICY)


async def serve_live(websocket, session: LiveSession, mode: str, model: str | None = None) -> None:
    """One accepted WebSocket: frames in, updates out, until stop, disconnect or bad input.

    Reading runs in a worker thread, one step at a time: while it works, frames keep
    arriving, and the next step takes the newest window (a slow host skips hops rather than
    falling behind). The event loop only decodes frames and moves messages.
    """
    await websocket.send_json(session.describe(mode, model))
    reading: asyncio.Task | None = None

    async def read(final: bool = False) -> None:
        update = await asyncio.to_thread(session.step, final)
        if update is not None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client left
                await websocket.send_json(update)

    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                session.add(message["bytes"])
            else:
                _stop_message(message.get("text") or "")
                break
            if session.due() and (reading is None or reading.done()):
                if reading is not None:
                    reading.result()  # a failed step is raised here, not lost
                reading = asyncio.create_task(read())
        if reading is not None:
            await reading
        await read(final=True)
        await websocket.close(CLOSE_NORMAL)
    except LiveError as error:
        await refuse(websocket, error)
    except Exception:  # a bug in a step: the session ends, the service stays up
        LOG.exception("live session failed")
        await refuse(
            websocket, LiveError("internal", "the stream could not be read", CLOSE_SERVER_ERROR)
        )
    finally:
        if reading is not None and not reading.done():
            reading.cancel()
