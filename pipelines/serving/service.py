"""The HTTP service: lip-reading and translation exports behind one FastAPI app, and its page.

    app = create_app(lipreading="grid_s1", translation=None, limits=ServiceLimits())
    app = create_app(["grid_s1", "runs/s2/export"], ["multi30k_en_de"])   # several of a kind
    uvicorn.run(app, host="127.0.0.1", port=8000)          # what `lipseq serve` does

Endpoints: GET / (the web page), POST /v1/transcribe (multipart `video` upload; options
`mode`, `grammar`, `images`, `subtitles` (srt or vtt), and `lm_weight` / `lm_length_bonus`
for fused `*_lm` modes), POST /v1/translate (JSON), GET /v1/models, GET /healthz,
GET /metrics (Prometheus text), and WebSocket /v1/live (camera frames in, a growing
transcript out: pipelines/serving/live.py). Several exports of each kind may be served: each
has a name (model_name), requests pick one with `model` (a form field of /v1/transcribe, a
JSON key of /v1/translate, a query parameter of /v1/live; the first of its kind when absent),
an unknown name answers 404 unknown_model with the names served, and every answer says
which model gave it. Every mode answers with word times. A long
upload (over 20 s, of unknown length, or frames above full HD) goes the command's long-video way
(pipelines/inference/long_video.py): read in overlapping windows, it answers with pieces,
gaps and words timed over the whole video, up to ServiceLimits.max_seconds.
Every error is JSON {"error": reason, "detail": ...}:
400 bad options, 413 upload too large or too long, 415 unsupported or undecodable media,
404 no model of that kind or
name, 422 no face or lips (the preparation's own reason), 503 with Retry-After when the bounded
queue is full. Each model is loaded once and shared by all requests, and one admission queue
holds every model's requests (they share the host's cores); uploads live in a private
temporary folder and are removed on every path.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel

from data_prep.errors import ConfigError
from data_prep.lipreading import ClipSkipped, open_clip
from data_prep.video import VideoError
from pipelines.artifacts.exports import resolve_export
from pipelines.inference.lipreading import LipReadingExport, PreparedInput
from pipelines.inference.long_video import is_long, transcribe_long
from pipelines.inference.translation import load_translate_modes, translate_all
from pipelines.inference.words import SUBTITLE_FORMATS, timed_words
from pipelines.inference.words import subtitles as subtitles_text
from pipelines.serving.batch import LONG_VIDEO_KEYS
from pipelines.serving.live import (
    CLOSE_TRY_LATER,
    LiveError,
    LiveSession,
    LiveSettings,
    default_mode,
    refuse,
    serve_live,
)

STATIC_DIR = Path(__file__).parent / "static"
UPLOAD_CHUNK_BYTES = 1 << 20
MAX_TRANSLATE_TEXTS = 64
MAX_TRANSLATE_CHARS = 2000

# The preparation's skip reasons (data_prep.video.REASONS and the face tracker's flags) as
# HTTP statuses: the media cannot be read (415), is over a limit (413), or shows no lips (422).
STATUS_OF_REASON = {
    "empty_file": 415,
    "audio_only": 415,
    "unreadable": 415,
    "zero_frames": 415,
    "truncated": 415,
    "inconsistent_size": 415,
    "too_large": 413,
    "too_long": 413,
    "too_small": 422,
    "too_few_frames": 422,
    "too_short": 422,
    "corrupt_frames": 415,
    "no_face": 422,
    "face_lost_too_long": 422,
}


@dataclass(frozen=True)
class ServiceLimits:
    """What one request may ask for, and how many may wait.

    max_seconds bounds every upload, the long ones read in windows included: five minutes
    cost about 150 windows, some 15 to 30 s of the 2-core host's time for one request.
    """

    max_upload_bytes: int = 64 << 20
    max_seconds: float = 300.0
    queue_size: int = 8
    retry_after_seconds: int = 2


class ServiceError(Exception):
    """A request the service refuses: HTTP status, machine-readable reason, detail, and
    `extra` keys for the JSON body (unknown_model's list of the names served)."""

    def __init__(
        self,
        status: int,
        reason: str,
        detail: str = "",
        headers: dict | None = None,
        extra: dict | None = None,
    ):
        super().__init__(f"{status} {reason}: {detail}")
        self.status, self.reason, self.detail, self.headers = status, reason, detail, headers
        self.extra = extra or {}


def model_name(export: str | Path) -> str:
    """What requests call an export: a shipped release by its name, any other by its
    folder's name, or its parent's when that folder is `export` (`lipseq export` writes
    <workdir>/export, so the workdir tells such exports apart)."""
    folder = Path(os.path.abspath(resolve_export(export)))
    return folder.parent.name if folder.name == "export" and folder.parent.name else folder.name


def named_exports(exports: list[str | Path]) -> dict[str, str | Path]:
    """name -> export, in the order given; ValueError naming both exports when two share a
    name (a request could not pick between them)."""
    named: dict[str, str | Path] = {}
    for export in exports:
        name = model_name(export)
        if name in named:
            raise ValueError(
                f"two models named {name!r}: {named[name]} and {export}; "
                "serve each from a folder of its own name"
            )
        named[name] = export
    return named


def pick_model(models: dict, name: str | None, kind: str):
    """The model a request names, the first one (the default) when it names none."""
    if not models:
        raise ServiceError(404, "no_model", f"this service has no {kind} model")
    if not name:
        return next(iter(models.values()))
    if name not in models:
        served = ", ".join(models)
        raise ServiceError(
            404,
            "unknown_model",
            f"no {kind} model named {name!r}; this service has {served}",
            extra={"models": list(models)},
        )
    return models[name]


def _png_data_uri(image: np.ndarray) -> str:
    ok, encoded = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def crop_strip(crops: np.ndarray, count: int = 12, scale: int = 2) -> np.ndarray:
    """`count` evenly spaced mouth crops side by side (BGR or gray uint8), enlarged."""

    picks = np.linspace(0, len(crops) - 1, min(count, len(crops))).round().astype(int)
    strip = np.concatenate([crops[i] for i in picks], axis=1)
    if strip.shape[-1] == 3:
        strip = cv2.cvtColor(strip, cv2.COLOR_RGB2BGR)
    strip = strip.squeeze(-1) if strip.shape[-1] == 1 else strip
    return cv2.resize(strip, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def attention_heatmap(alignment: np.ndarray, cell: tuple[int, int] = (6, 10)) -> np.ndarray:
    """Attention weights [output characters, frames] as a colour map, one row per character."""

    rows, columns = alignment.shape
    peak = alignment.max(axis=1, keepdims=True)
    scaled = (255 * alignment / np.maximum(peak, 1e-9)).astype(np.uint8)
    image = cv2.resize(scaled, (columns * cell[0], rows * cell[1]), interpolation=cv2.INTER_NEAREST)
    return cv2.applyColorMap(image, cv2.COLORMAP_VIRIDIS)


class LipReadingService:
    """A lip-reading export behind HTTP: the front door's answers as 4xx refusals."""

    def __init__(self, export: str | Path, name: str | None = None):
        self.export = LipReadingExport(export)
        self.name = name or self.export.name

    def describe(self) -> dict:
        return {
            "name": self.name,
            "task": self.export.info["task"],
            "modes": self.export.modes(),
            "default_mode": self.export.default.mode_name,
            "grammar_modes": self.export.grammar_modes(),
            "frame_shape": list(self.export.frame_shape),
            "fps": self.export.settings.target_fps,
        }

    def warm_up(self) -> None:
        """The default signature and the CTC modes' word timing called once, so that no
        request pays their start-up."""
        self.export.warm_up()
        crops = np.zeros((8, *self.export.frame_shape), np.uint8)
        timed_words(self.export, "a", np.zeros((0, 8), np.float32), crops, 25.0)

    def signature(self, mode: str | None, grammar: bool, **lm_options):
        """(entry, function); lm_options (lm_weight, lm_length_bonus) set a fused mode's
        weights for this request (the export's own when None)."""
        try:
            entry = self.export.entry(mode, grammar)
        except ConfigError as error:
            raise ServiceError(400, "bad_option", str(error)) from None
        given = {key: value for key, value in lm_options.items() if value is not None}
        if given and not entry.fusion:
            raise ServiceError(
                400, "bad_option", f"{', '.join(sorted(given))} need a fused mode (*_lm)"
            )
        return entry, self.export.function(entry, **lm_options)

    def read(self, video: Path, function, max_seconds: float, name: str = "upload"):
        """An upload opened once and read whole (a PreparedInput for `export.run`) or, when it
        is long, window by window (transcribe_long's dict); ServiceError with the reason.

        Error details name the upload by `name`, never by the server's temporary path.
        """
        longest = int(max_seconds * self.export.settings.target_fps)
        try:
            with open_clip(video) as source:
                if not is_long(source):
                    return self.export.prepare(source, longest=longest)
                if (source.duration_s or 0.0) > max_seconds:
                    detail = f"{source.duration_s:.1f} s is over the limit of {max_seconds:g} s"
                    raise ServiceError(413, "too_long", f"{name}: {detail}")
                reader = WindowReader(self.export, function)
                return transcribe_long(source, reader, longest=longest)
        except (ClipSkipped, VideoError) as skipped:
            status = STATUS_OF_REASON.get(skipped.reason, 422)
            detail = f"{name}: {skipped.detail or skipped.reason}".replace(str(video), name)
            raise ServiceError(status, skipped.reason, detail) from None


class WindowReader:
    """The request's signature as transcribe_long calls it, window by window, through
    export.run (so windows queue with every other request's model calls)."""

    def __init__(self, export: LipReadingExport, function):
        self.export, self.function, self.settings = export, function, export.settings

    def __call__(self, frames: np.ndarray, lengths: np.ndarray) -> dict:
        crops = np.asarray(frames)[0, : int(lengths[0])]
        out = self.export.run(self.function, PreparedInput(crops, self.settings.target_fps))
        return {key: np.asarray(value)[None] for key, value in out.items()}


class TranslationModel:
    """One translation export in memory, with every signature it has (beam, greedy, and
    beam_lm or beam_candidates where the export was made with them)."""

    def __init__(self, export: str | Path, name: str | None = None):
        self.name = name or str(export)
        self.functions = load_translate_modes(export, None)
        self._lock = threading.Lock()

    def describe(self) -> dict:
        return {"name": self.name, "task": "translation", "modes": sorted(self.functions)}

    def translate(self, texts: list[str], mode: str) -> dict:
        if mode not in self.functions:
            raise ServiceError(
                400, "bad_option", f"mode {mode!r} is not one of {', '.join(self.functions)}"
            )
        with self._lock:
            return translate_all(self.functions[mode], texts)


class AdmissionQueue:
    """At most `size` requests in the service at once; the next ones are turned away."""

    def __init__(self, size: int, retry_after_seconds: int):
        self._slots = threading.BoundedSemaphore(size)
        self.retry_after = retry_after_seconds
        self.waiting = 0

    def __enter__(self):
        if not self._slots.acquire(blocking=False):
            raise ServiceError(
                503,
                "busy",
                "the request queue is full; retry later",
                {"Retry-After": str(self.retry_after)},
            )
        self.waiting += 1
        return self

    def __exit__(self, *exc_info):
        self.waiting -= 1
        self._slots.release()


class Metrics:
    """Prometheus counters for the service, in a registry of its own (one per app)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lipseq_requests",
            "HTTP requests by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lipseq_request_seconds",
            "Request latency by route.",
            ["route"],
            buckets=(0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "lipseq_requests_in_flight", "Requests being served.", registry=self.registry
        )
        self.stage = Histogram(
            "lipseq_transcribe_stage_seconds",
            "Seconds per transcription stage (prepare, model, words).",
            ["stage"],
            registry=self.registry,
        )

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class TranslateRequest(BaseModel):
    """POST /v1/translate: one text or a list, and the search."""

    text: str | list[str]
    mode: str = "beam"
    model: str | None = None


def _parse_bool(value: str | None, name: str) -> bool:
    if value is None or value == "":
        return False
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ServiceError(400, "bad_option", f"{name} must be true or false, got {value!r}")


def _parse_float(value: str | None, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not np.isfinite(number):
        raise ServiceError(400, "bad_option", f"{name} must be a finite number, got {value!r}")
    return number


async def _save_upload(upload, folder: Path, max_bytes: int) -> Path:
    """Copies an upload into `folder` chunk by chunk, refusing it once it passes max_bytes."""
    suffix = Path(upload.filename or "").suffix.lower()[:8]
    handle = tempfile.NamedTemporaryFile(dir=folder, suffix=suffix, delete=False)
    path = Path(handle.name)
    try:
        with handle:
            size = 0
            while chunk := await upload.read(UPLOAD_CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise ServiceError(
                        413, "too_large", f"the upload is over the limit of {max_bytes} bytes"
                    )
                handle.write(chunk)
        if size == 0:
            raise ServiceError(415, "empty_file", "the upload has zero bytes")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _parse_subtitles(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if value not in SUBTITLE_FORMATS:
        known = ", ".join(SUBTITLE_FORMATS)
        raise ServiceError(400, "bad_option", f"subtitles must be one of {known}, got {value!r}")
    return value


def transcription_response(
    model: LipReadingService,
    mode: str,
    out: dict,
    prepared: PreparedInput,
    images: bool,
    words: list[dict] | None,
) -> dict:
    """The JSON body of a transcription: text, score, word times, ROI confidence, pictures."""
    crops = prepared.crops
    text = out["text"].decode("utf-8", errors="replace")
    alignment = out["alignments"][:, : len(crops)]
    confidence = [
        None if not np.isfinite(c) else round(float(c), 3) for c in prepared.track.confidence
    ]
    body = {
        "model": model.name,
        "mode": mode,
        "long": False,
        "text": text,
        "score": round(float(out["scores"]), 4),
        "words": words,
        "num_frames": len(crops),
        "fps": prepared.fps,
        "roi_confidence": confidence,
    }
    if images:
        body["images"] = {"crops": _png_data_uri(crop_strip(crops))}
        if alignment.size:
            body["images"]["attention"] = _png_data_uri(attention_heatmap(alignment))
    return body


def long_response(model: LipReadingService, mode: str, result: dict) -> dict:
    """The JSON body of a long video read in windows: text, words timed over the whole
    video, pieces and gaps (no single score, crop strip or attention map)."""
    return {"model": model.name, "mode": mode, "long": True} | {
        key: result[key] for key in LONG_VIDEO_KEYS
    }


def _as_list(exports) -> list:
    if exports is None:
        return []
    return [exports] if isinstance(exports, (str, Path)) else list(exports)


def load_models(lipreading: list, translation: list) -> tuple[dict, dict]:
    """(name -> LipReadingService, name -> TranslationModel), each export loaded once and
    each lip reader warmed up. Names are checked before anything loads, across both kinds, so
    that /v1/models lists each name once and a clash costs no load."""
    names = list(named_exports([*lipreading, *translation]))
    readers = {
        name: LipReadingService(export, name)
        for name, export in zip(names[: len(lipreading)], lipreading, strict=True)
    }
    translators = {
        name: TranslationModel(export, name)
        for name, export in zip(names[len(lipreading) :], translation, strict=True)
    }
    for reader in readers.values():
        reader.warm_up()
    return readers, translators


def create_app(
    lipreading: str | Path | list[str | Path] | None = None,
    translation: str | Path | list[str | Path] | None = None,
    limits: ServiceLimits | None = None,
):
    """The FastAPI app serving the given exports (paths or shipped release names, one or a
    list of each kind; the first of a kind is its default)."""
    lipreading, translation = _as_list(lipreading), _as_list(translation)
    if not (lipreading or translation):
        raise ValueError("give a lip-reading export, a translation export, or both")
    limits = limits or ServiceLimits()
    readers, translators = load_models(lipreading, translation)
    queue = AdmissionQueue(limits.queue_size, limits.retry_after_seconds)
    metrics = Metrics()
    upload_dir = Path(tempfile.mkdtemp(prefix="lipseq-serve-"))

    @asynccontextmanager
    async def lifespan(_app):
        yield
        shutil.rmtree(upload_dir, ignore_errors=True)

    app = FastAPI(title="lipseq", version="1", lifespan=lifespan, docs_url="/docs")
    app.state.upload_dir = upload_dir
    app.state.limits = limits
    app.state.metrics = metrics
    app.state.queue = queue
    # The default lip reader (the first), and every model by name.
    app.state.reader = next(iter(readers.values()), None)
    app.state.readers, app.state.translators = readers, translators
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(ServiceError)
    async def service_error(_request, error: ServiceError):
        return JSONResponse(
            {"error": error.reason, "detail": error.detail} | error.extra,
            status_code=error.status,
            headers=error.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request, error: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return JSONResponse({"error": "bad_request", "detail": problems}, status_code=400)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        started = time.perf_counter()
        metrics.in_flight.inc()
        try:
            response = await call_next(request)
        finally:
            metrics.in_flight.dec()
        route = request.scope.get("route")
        label = getattr(route, "path", "unmatched")
        metrics.requests.labels(label, str(response.status_code)).inc()
        metrics.latency.labels(label).observe(time.perf_counter() - started)
        return response

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "in_flight": queue.waiting}

    @app.get("/v1/models")
    async def models():
        """Every model served, lip readers first; `default` marks the first of each kind,
        the one a request without `model` gets."""
        listed = []
        for kind in (readers, translators):
            listed += [m.describe() | {"default": i == 0} for i, m in enumerate(kind.values())]
        return {"models": listed}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus():
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.post("/v1/transcribe")
    async def transcribe(
        request: Request,
        video: Annotated[UploadFile, File()],
        mode: Annotated[str | None, Form()] = None,
        grammar: Annotated[str | None, Form()] = None,
        images: Annotated[str | None, Form()] = None,
        subtitles: Annotated[str | None, Form()] = None,
        lm_weight: Annotated[str | None, Form()] = None,
        lm_length_bonus: Annotated[str | None, Form()] = None,
        model: Annotated[str | None, Form()] = None,
    ):
        reader = pick_model(readers, model, "lip-reading")
        declared = int(request.headers.get("content-length") or 0)
        if declared > limits.max_upload_bytes + UPLOAD_CHUNK_BYTES:
            raise ServiceError(
                413, "too_large", f"the upload is over the limit of {limits.max_upload_bytes} bytes"
            )
        entry, function = reader.signature(
            mode or None,
            _parse_bool(grammar, "grammar"),
            lm_weight=_parse_float(lm_weight, "lm_weight"),
            lm_length_bonus=_parse_float(lm_length_bonus, "lm_length_bonus"),
        )
        want_images = _parse_bool(images, "images")
        subtitle_format = _parse_subtitles(subtitles)
        name = video.filename or "upload"
        with queue:
            path = await _save_upload(video, upload_dir, limits.max_upload_bytes)
            try:
                started = time.perf_counter()
                read = await asyncio.to_thread(
                    reader.read, path, function, limits.max_seconds, name
                )
            finally:
                path.unlink(missing_ok=True)
            if isinstance(read, PreparedInput):
                seconds = {"prepare": time.perf_counter() - started}
                body = await answer_whole(
                    reader, entry.mode_name, function, read, want_images, seconds
                )
            else:
                body = long_response(reader, entry.mode_name, read)
                seconds = {key: read["seconds"][key] for key in ("prepare", "model", "words")}
        for stage, spent in seconds.items():
            metrics.stage.labels(stage).observe(spent)
        body["seconds"] = {stage: round(spent, 4) for stage, spent in seconds.items()}
        if subtitle_format:
            body["subtitles"] = subtitles_text(body["words"] or [], subtitle_format)
        return body

    async def answer_whole(reader, mode, function, clip, want_images, seconds) -> dict:
        """A clip read whole: the model, its word times and the body; `seconds` gets each
        stage's time."""
        began = time.perf_counter()
        out = await asyncio.to_thread(reader.export.run, function, clip)
        text = out["text"].decode("utf-8", errors="replace")
        timed = time.perf_counter()
        words = await asyncio.to_thread(
            timed_words, reader.export, text, out["alignments"], clip.crops, clip.fps
        )
        seconds.update(model=timed - began, words=time.perf_counter() - timed)
        return await asyncio.to_thread(
            transcription_response, reader, mode, out, clip, want_images, words
        )

    @app.websocket("/v1/live")
    async def live(
        websocket: WebSocket,
        mode: str | None = None,
        grammar: str | None = None,
        model: str | None = None,
    ):
        await websocket.accept()
        try:
            reader = pick_model(readers, model, "lip-reading")
            mode = mode or default_mode(reader.export)
            entry, function = reader.signature(mode, _parse_bool(grammar, "grammar"))
            with queue:  # a stream holds a place in the queue while it lasts
                settings = LiveSettings(max_seconds=limits.max_seconds)
                session = LiveSession(reader.export, function, settings)
                await serve_live(websocket, session, entry.mode_name, reader.name)
        except ServiceError as error:
            code = CLOSE_TRY_LATER if error.status == 503 else 1008
            await refuse(websocket, LiveError(error.reason, error.detail, code), error.extra)

    @app.post("/v1/translate")
    async def translate(request: TranslateRequest):
        translator = pick_model(translators, request.model, "translation")
        texts = [request.text] if isinstance(request.text, str) else list(request.text)
        if not texts or len(texts) > MAX_TRANSLATE_TEXTS:
            raise ServiceError(400, "bad_option", f"give 1 to {MAX_TRANSLATE_TEXTS} texts")
        if any(len(t) > MAX_TRANSLATE_CHARS for t in texts):
            raise ServiceError(
                400, "bad_option", f"a text is longer than {MAX_TRANSLATE_CHARS} characters"
            )
        with queue:
            result = await asyncio.to_thread(translator.translate, texts, request.mode)
        return {
            "model": translator.name,
            "mode": request.mode,
            "translations": result["text"],
            "scores": [round(s, 4) for s in result["scores"]],
        }

    return app
