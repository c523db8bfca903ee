"""The HTTP service with the shipped GRID s1 model: answers, every refusal's status and reason,
the bounded queue, metrics, and a soak of good and bad uploads that leaves it up and clean."""

import base64
import os

import cv2
import numpy as np
import pytest

from pipelines.artifacts.exports import read_export_info, released_models
from tests.videos import first_frames

pytestmark = pytest.mark.skipif(
    "grid_s1" not in released_models(), reason="no grid_s1 release in models/releases"
)

MAX_UPLOAD_BYTES = 8 << 20
MAX_SECONDS = 6.0


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Good and bad uploads, built here: name -> (filename, bytes)."""
    from data_prep.synthetic.faces import write_synthetic_corpus
    from data_prep.synthetic.speech import write_wav

    root = tmp_path_factory.mktemp("media")
    face = write_synthetic_corpus(root / "faces", 1, seed=5)["clips"][0]["video"]
    good = open(face, "rb").read()

    def cut_video(_source: bytes, name: str, frames: int) -> bytes:
        """The first `frames` frames of the good face video."""
        return first_frames(face, root / name, frames).read_bytes()

    def wall_video(name: str, frames: int) -> bytes:
        """A smooth, faceless gradient: decodes cleanly (not flat grey, which the clip core
        refuses as corrupt_frames), so only the face search can refuse it."""
        path = root / name
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (160, 120))
        y, x = np.mgrid[0:120, 0:160]
        wall = np.repeat((x * 1.5 + y * 0.2).astype(np.uint8)[:, :, None], 3, axis=2)
        for _ in range(frames):
            writer.write(wall)
        writer.release()
        return path.read_bytes()

    tone = (np.sin(np.arange(16000) * 0.05) * 8000).astype(np.int16)
    return {
        "good": ("face.mp4", good),
        "empty": ("empty.mp4", b""),
        "garbage": ("garbage.mp4", np.random.default_rng(0).bytes(50_000)),
        "truncated": ("cut.mp4", good[: len(good) // 3]),
        "audio_only": ("speech.wav", write_wav(tone, root / "speech.wav").read_bytes()),
        "no_face": ("wall.mp4", wall_video("wall.mp4", 50)),
        "too_long": ("long.mp4", wall_video("long.mp4", int(MAX_SECONDS * 25) + 60)),
        "one_frame": ("still.mp4", cut_video(good, "still.mp4", 1)),
        "three_frames": ("blink.mp4", cut_video(good, "blink.mp4", 3)),
        "five_frames": ("glance.mp4", cut_video(good, "glance.mp4", 5)),
        "shortest": ("sentence.mp4", cut_video(good, "sentence.mp4", 20)),
        "huge": ("huge.mp4", np.random.default_rng(1).bytes(MAX_UPLOAD_BYTES + 4096)),
    }


@pytest.fixture(scope="module")
def served():
    """(test client, the export the service loaded): the in-process reference reads with the
    service's own export, as a second load of grid_s1 costs the suite tens of seconds."""
    from fastapi.testclient import TestClient

    import pipelines.serving.service as service

    opened = []

    class Recorded(service.LipReadingExport):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    limits = service.ServiceLimits(max_upload_bytes=MAX_UPLOAD_BYTES, max_seconds=MAX_SECONDS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "LipReadingExport", Recorded)
        app = service.create_app("grid_s1", limits=limits)
    (export,) = opened
    with TestClient(app) as test_client:
        yield test_client, export


@pytest.fixture(scope="module")
def client(served):
    return served[0]


def post(client, upload, **options):
    filename, data = upload
    return client.post("/v1/transcribe", files={"video": (filename, data)}, data=options)


def test_health_and_model_list(client):
    assert client.get("/healthz").json()["status"] == "ok"
    (model,) = client.get("/v1/models").json()["models"]
    # The service's default mode is the export's own (the release serves attention).
    assert model["task"] == "lipreading" and model["default_mode"] == "attention"
    assert model["default_mode"] == read_export_info("grid_s1")["serving_default"]
    assert {"ctc_greedy", "ctc_beam", "attention", "joint"} <= set(model["modes"])


def same_score(score: float, expected: float) -> bool:
    """Scores of one clip from two paths: float32 search; answers round to 4 decimals."""
    return score == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_transcribes_an_upload_as_the_in_process_transcriber_reads_it(served, media, tmp_path):
    from pipelines.inference.lipreading import VideoTranscriber
    from pipelines.inference.words import timed_words

    client, export = served
    video = tmp_path / media["good"][0]
    video.write_bytes(media["good"][1])
    expected = VideoTranscriber(export, "attention", grammar=True).transcribe(video)
    response = post(client, media["good"], mode="attention", grammar="true", images="true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["mode"], body["text"]) == ("attention", expected["text"])
    assert same_score(body["score"], expected["score"])
    crops, fps = expected["crops"], body["fps"]
    assert body["num_frames"] == len(crops) and len(body["roi_confidence"]) == len(crops)
    assert body["words"] == timed_words(
        export, expected["text"], expected["alignments"], crops, fps
    )
    assert [w["word"] for w in body["words"]] == expected["text"].split()
    for name in ("crops", "attention"):
        header, data = body["images"][name].split(",", 1)
        assert header == "data:image/png;base64"
        image = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.size > 0
    greedy = VideoTranscriber(export, "ctc_greedy").transcribe(video)
    ctc = post(client, media["good"], mode="ctc_greedy").json()
    assert ctc["text"] == greedy["text"] and same_score(ctc["score"], greedy["score"])
    # CTC gives no attention: its words are timed by the export's decoder forced over the text.
    assert ctc["words"] == timed_words(export, greedy["text"], greedy["alignments"], crops, fps)
    assert "images" not in ctc


@pytest.mark.parametrize(
    "name, status, reason",
    [
        ("empty", 415, "empty_file"),
        ("garbage", 415, "unreadable"),
        ("audio_only", 415, "audio_only"),
        ("no_face", 422, "no_face"),
        ("too_long", 413, "too_long"),
        ("one_frame", 422, "too_short"),
        ("three_frames", 422, "too_short"),
        ("five_frames", 422, "too_short"),
        ("huge", 413, "too_large"),
    ],
)
def test_bad_uploads_get_their_status_and_reason(client, media, name, status, reason):
    response = post(client, media[name])
    assert (response.status_code, response.json()["error"]) == (status, reason)
    assert media[name][0] in response.json()["detail"] or name in ("empty", "huge")
    assert "lipseq-serve" not in response.json()["detail"]  # no server paths in answers


def test_too_short_names_the_minimum_and_a_clip_at_it_is_read(client, media):
    # grid_s1's shortest GRID sentence needs 20 frames (test_front_door.py works it out).
    detail = post(client, media["five_frames"]).json()["detail"]
    assert detail == "glance.mp4: 5 frames (0.20 s), this model needs at least 20 (0.80 s)"
    response = post(client, media["shortest"], mode="ctc_greedy", grammar="true")
    assert response.status_code == 200, response.text
    assert response.json()["num_frames"] == 20 and len(response.json()["text"].split()) == 6
    assert client.get("/healthz").json()["status"] == "ok"


def test_a_truncated_upload_is_refused_as_media(client, media):
    response = post(client, media["truncated"])
    assert response.status_code == 415
    assert response.json()["error"] in ("unreadable", "truncated")


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"mode": "fastest"}, "mode"),
        ({"grammar": "maybe"}, "grammar"),
        ({}, "video"),
        ({"lm_weight": "heavy"}, "lm_weight must be a finite number"),
        ({"mode": "joint", "lm_weight": "0.5"}, "need a fused mode"),
    ],
)
def test_bad_options_get_400(client, media, options, fragment):
    files = {} if fragment == "video" else {"video": media["good"]}
    response = client.post("/v1/transcribe", files=files, data=options)
    assert response.status_code == 400
    assert fragment in response.json()["detail"]


def test_a_full_queue_answers_503_with_retry_after(client, media):
    queue = client.app.state.queue
    held = []
    try:
        while True:  # take every slot, as waiting requests would
            try:
                held.append(queue.__enter__())
            except Exception:
                break
        response = post(client, media["good"], mode="ctc_greedy")
    finally:
        for _ in held:
            queue.__exit__(None, None, None)
    assert response.status_code == 503 and response.json()["error"] == "busy"
    assert response.headers["retry-after"] == "2"
    assert post(client, media["good"], mode="ctc_greedy").status_code == 200


def test_metrics_count_requests_by_route_and_status(client, media):
    post(client, media["garbage"])
    text = client.get("/metrics").text
    assert 'lipseq_requests_total{route="/v1/transcribe",status="415"}' in text
    assert 'lipseq_request_seconds_bucket{le="0.1",route="/v1/transcribe"}' in text
    assert "lipseq_transcribe_stage_seconds_count" in text


def test_translate_is_404_without_a_translation_model(client):
    response = client.post("/v1/translate", json={"text": "a dog"})
    assert response.status_code == 404 and response.json()["error"] == "no_model"


def test_soak_of_good_and_bad_uploads_leaves_the_service_up_and_clean(client, media):
    import psutil

    process = psutil.Process()
    expected = {
        "good": 200,
        "empty": 415,
        "garbage": 415,
        "truncated": 415,
        "audio_only": 415,
        "no_face": 422,
        "too_long": 413,
        "huge": 413,
    }
    post(client, media["good"], mode="ctc_greedy")
    rss_before = process.memory_info().rss
    statuses = []
    for _ in range(3):
        for name, status in expected.items():
            response = post(client, media[name], mode="ctc_greedy")
            statuses.append((name, response.status_code))
            assert response.status_code == status, (name, response.text)
            assert client.get("/healthz").status_code == 200
    growth_mb = (process.memory_info().rss - rss_before) / 2**20
    print(f"soak: {len(statuses)} uploads, RSS growth {growth_mb:.1f} MiB")
    assert growth_mb < 300
    assert os.listdir(client.app.state.upload_dir) == []


def test_preparation_in_many_threads_gives_every_thread_the_same_crops(media, tmp_path):
    """The service prepares uploads in threads; each thread has its own face detector (one
    shared OpenCV cascade fails under concurrent use)."""
    from concurrent.futures import ThreadPoolExecutor

    from data_prep.lipreading import LipreadingSettings, prepare_video

    video = tmp_path / "face.mp4"
    video.write_bytes(media["good"][1])
    settings = LipreadingSettings(preset="gray80", detect_every=1)

    def prepare(_):
        return prepare_video(video, settings).crops

    with ThreadPoolExecutor(6) as pool:
        crops = list(pool.map(prepare, range(12)))
    assert all(np.array_equal(c, crops[0]) for c in crops)
