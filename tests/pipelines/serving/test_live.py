"""The live WebSocket (/v1/live) through FastAPI's TestClient: a GRID clip's frames streamed in
order read as the front door reads the clip; a generated face streamed for 6 s gives updates
while it streams, with final words in order; bad messages get their reason and close code,
and the service goes on serving."""

import contextlib
import json

import cv2
import numpy as np
import pytest
from starlette.websockets import WebSocketDisconnect

from data_prep.video import stream_frames
from pipelines.artifacts.exports import released_models
from pipelines.serving.live import HEADER

pytestmark = pytest.mark.skipif(
    "grid_s1" not in released_models(), reason="no grid_s1 release in models/releases"
)
# A test-split clip (tests/e2e/grid_s1_test_split_hypotheses.json) that ctc_greedy reads right.
GRID_CLIP = "grid/s1/video/bwam8n.mp4"


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from pipelines.serving.service import create_app

    with TestClient(create_app("grid_s1")) as test_client:
        yield test_client


def frame_message(milliseconds: float, frame: np.ndarray, kind: str = ".png") -> bytes:
    """A frame as the page sends it: capture time, then the picture (PNG: lossless)."""
    ok, picture = cv2.imencode(kind, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    assert ok
    return HEADER.pack(milliseconds) + picture.tobytes()


def stream(client, frames, fps=25.0, query="") -> list[dict]:
    """Every message the server sends for these frames, sent in order then stopped."""
    with client.websocket_connect("/v1/live" + query) as socket:
        ready = socket.receive_json()
        assert ready["type"] == "ready"
        for index, frame in enumerate(frames):
            socket.send_bytes(frame_message(index * 1000.0 / fps, frame))
        socket.send_text(json.dumps({"type": "stop"}))
        messages = [ready]
        while messages[-1]["type"] != "final":
            messages.append(socket.receive_json())
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 1000
    return messages


def test_a_grid_clip_streamed_reads_as_the_front_door_reads_it(client, shared_data):
    from pipelines.inference.lipreading import VideoTranscriber

    video = shared_data / GRID_CLIP
    frames = [frame for _, frame in stream_frames(video, 25.0)]
    export = client.app.state.reader.export
    expected = VideoTranscriber(export, "ctc_greedy").transcribe(video)["text"]
    messages = stream(client, frames)
    assert messages[0]["mode"] == "ctc_greedy"
    final = messages[-1]
    # Lossless frames and one 3 s window holding the whole clip: the very same reading.
    assert final["text"] == expected == "bin white at m eight now"
    words = [w for m in messages[1:] for w in m["words"]]
    assert " ".join(w["word"] for w in words) == expected
    assert final["tentative"] == []
    assert final["covered_until"] == final["final_until"] == pytest.approx(len(frames) / 25)
    assert [p["text"] for p in final["pieces"]] == [expected] and final["gaps"] == []


def test_a_face_streamed_for_6_s_grows_its_transcript_while_it_streams(client, tmp_path):
    from data_prep.synthetic.faces import write_synthetic_corpus

    clips = write_synthetic_corpus(tmp_path / "faces", 2, seed=3)["clips"]
    frames = [f for clip in clips for _, f in stream_frames(clip["video"], 25.0)]
    messages = stream(client, frames)
    updates = [m for m in messages if m["type"] == "update"]
    assert updates, "no update came before the stream stopped"
    covered = [m["covered_until"] for m in messages[1:]]
    assert covered == sorted(covered) and covered[-1] == pytest.approx(len(frames) / 25)
    finals = [m["final_until"] for m in messages[1:]]
    assert finals == sorted(finals) and finals[-1] == covered[-1]
    # Words made final once stay, in the order spoken, on the stream's clock.
    words = [w for m in messages[1:] for w in m["words"]]
    assert " ".join(w["word"] for w in words) == messages[-1]["text"]
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and 0 <= starts[0] and words[-1]["end"] <= covered[-1]
    assert all(m["lag"] >= 0 for m in messages[1:])


def test_a_stream_stopped_before_any_frame_ends_with_an_empty_final_update(client):
    messages = stream(client, [])
    assert [m["type"] for m in messages] == ["ready", "final"]
    assert (messages[-1]["text"], messages[-1]["covered_until"]) == ("", 0)


def test_a_stream_holds_a_queue_place_and_the_service_answers_while_it_streams(client):
    """With every other place taken, a second stream is told to come back later (1013) and
    an upload gets 503, while the open stream's own updates keep coming."""
    frames = [np.full((288, 360, 3), 128, np.uint8)] * 12
    with contextlib.ExitStack() as places:
        for _ in range(client.app.state.limits.queue_size - 1):
            places.enter_context(client.app.state.queue)
        with client.websocket_connect("/v1/live") as socket:
            assert socket.receive_json()["type"] == "ready"
            for index, frame in enumerate(frames):
                socket.send_bytes(frame_message(index * 40.0, frame))
            error, code = refusal(client, "", None)
            assert (error["error"], code) == ("busy", 1013)
            answer = client.post("/v1/transcribe", files={"video": ("a.mp4", b"0")})
            assert answer.status_code == 503
            assert client.get("/healthz").status_code == 200
            assert socket.receive_json()["type"] == "update"  # a grey picture: no face, a gap
            socket.send_text(json.dumps({"type": "stop"}))
            final = socket.receive_json()
    assert final["type"] == "final" and final["gaps"] and final["text"] == ""
    with client.websocket_connect("/v1/live") as socket:  # the place is given back
        assert socket.receive_json()["type"] == "ready"


def refusal(client, query: str, message) -> tuple[dict, int | None]:
    """The error message and close code a session gets for one bad message (None: on
    connecting)."""
    with client.websocket_connect("/v1/live" + query) as socket:
        first = socket.receive_json()
        if first["type"] == "ready":
            if message is None:  # a session that should have been refused was not
                return first, None
            send = socket.send_bytes if isinstance(message, bytes) else socket.send_text
            send(message)
            first = socket.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    return first, closed.value.code


@pytest.mark.parametrize(
    "query, message, reason, code",
    [
        ("", "hello", "bad_message", 1008),
        ("", json.dumps({"type": "pause"}), "bad_message", 1008),
        ("", b"\x00" * 4, "bad_frame", 1007),
        ("", HEADER.pack(0.0) + b"not a picture", "bad_frame", 1007),
        ("", HEADER.pack(float("nan")) + b"\xff\xd8", "bad_frame", 1007),
        ("", HEADER.pack(0.0) + bytes(2 << 20), "too_large", 1009),
        ("?mode=nonsense", None, "bad_option", 1008),
        ("?grammar=maybe", None, "bad_option", 1008),
    ],
)
def test_bad_input_gets_its_reason_and_close_code_and_the_service_stays_up(
    client, query, message, reason, code
):
    error, closed_with = refusal(client, query, message)
    assert (error["type"], error["error"], closed_with) == ("error", reason, code)
    assert error["detail"]
    assert client.get("/healthz").json()["status"] == "ok"
    with client.websocket_connect("/v1/live") as socket:
        assert socket.receive_json()["type"] == "ready"
