"""Long videos over HTTP: an upload over 20 s goes the command's long-video way and answers with
pieces, gaps and words timed over the whole video, subtitles on request; an upload over the
service's bound is refused with its reason, and so is a stream of unknown length that passes
it. CTC modes answer with word times too."""

import numpy as np
import pytest

from data_prep.video import read_video
from pipelines.artifacts.exports import released_models
from tests.pipelines.serving.test_long_video import write_video

pytestmark = pytest.mark.skipif(
    "grid_s1" not in released_models(), reason="no grid_s1 release in models/releases"
)

MAX_SECONDS = 30.0
GAP_SECONDS = 2.0


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """name -> (filename, bytes, facts): a 20-odd-second talking face with a faceless gap,
    one longer than the bound, and a short face."""
    from data_prep.synthetic.faces import write_synthetic_corpus

    root = tmp_path_factory.mktemp("long")
    clips = write_synthetic_corpus(root / "faces", 3, seed=11)["clips"]
    parts = [read_video(clip["video"], target_fps=25.0).frames for clip in clips]
    blank = np.full((int(GAP_SECONDS * 25), *parts[0].shape[1:]), 90, np.uint8)
    before = np.concatenate([*parts, parts[0]])  # each clip is 3 to 4 s long
    frames = np.concatenate([before, blank, *parts])
    assert len(frames) > 20 * 25, "the video must be long enough to go the long way"
    long_path = write_video(root / "lecture.mp4", list(frames))
    wall = [np.full((64, 64, 3), 120, np.uint8)] * int((MAX_SECONDS + 2) * 25)
    too_long = write_video(root / "marathon.mp4", wall)
    facts = {"frames": len(frames), "gap_start": len(before) / 25.0}
    return {
        "long": ("lecture.mp4", long_path.read_bytes(), facts),
        "too_long": ("marathon.mp4", too_long.read_bytes(), {}),
        "short": ("face.mp4", open(clips[0]["video"], "rb").read(), {}),
    }


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from pipelines.serving.service import ServiceLimits, create_app

    with TestClient(create_app("grid_s1", limits=ServiceLimits(max_seconds=MAX_SECONDS))) as c:
        yield c


def post(client, upload, **options):
    filename, data, _ = upload
    return client.post("/v1/transcribe", files={"video": (filename, data)}, data=options)


def cue_times(text: str, separator: str) -> list[tuple[float, float]]:
    """(start, end) seconds of each cue of an SRT or WebVTT text."""

    def seconds(stamp: str) -> float:
        hours, minutes, rest = stamp.split(":")
        whole, millis = rest.split(separator)
        return int(hours) * 3600 + int(minutes) * 60 + int(whole) + int(millis) / 1000

    return [
        (seconds(line.split(" --> ")[0]), seconds(line.split(" --> ")[1]))
        for line in text.splitlines()
        if " --> " in line
    ]


@pytest.mark.parametrize("mode, kind", [("ctc_greedy", "srt"), ("attention", "vtt")])
def test_a_long_upload_answers_with_pieces_gaps_and_words_over_the_whole_video(
    client, media, mode, kind
):
    response = post(client, media["long"], mode=mode, subtitles=kind)
    assert response.status_code == 200, response.text
    body, facts = response.json(), media["long"][2]
    assert body["long"] is True and body["mode"] == mode
    assert body["num_frames"] == facts["frames"]
    duration = facts["frames"] / body["fps"]
    gap = max(body["gaps"], key=lambda g: g["end"] - g["start"])
    assert abs(gap["start"] - facts["gap_start"]) < 0.6
    assert abs(gap["end"] - (facts["gap_start"] + GAP_SECONDS)) < 0.6
    pieces = body["pieces"]
    assert len(pieces) >= 6 and all(p["text"] for p in pieces)
    assert [p["start"] for p in pieces] == sorted(p["start"] for p in pieces)
    words = body["words"]
    assert body["text"] == " ".join(w["word"] for w in words)
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    assert all(0.0 <= w["start"] <= w["end"] <= duration + 1e-6 for w in words)
    # Timed over the whole video, not one utterance's few seconds: words on both sides of the
    # gap, none inside it, and some in the video's last quarter.
    middles = [(w["start"] + w["end"]) / 2 for w in words]
    assert not [m for m in middles if gap["start"] + 0.2 < m < gap["end"] - 0.2]
    assert min(middles) < gap["start"] and max(middles) > 0.75 * duration
    cues = cue_times(body["subtitles"], "," if kind == "srt" else ".")
    assert body["subtitles"].startswith("WEBVTT" if kind == "vtt" else "1\n")
    assert len(cues) == -(-len(words) // 7)
    assert cues[0][0] == pytest.approx(words[0]["start"], abs=1e-3)
    assert cues[-1][1] == pytest.approx(words[-1]["end"], abs=1e-3)


def test_an_upload_over_the_bound_is_refused_with_the_limit(client, media):
    response = post(client, media["too_long"], mode="ctc_greedy")
    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "too_long"
    assert "marathon.mp4" in body["detail"] and f"{MAX_SECONDS:g} s" in body["detail"]


def test_a_stream_of_unknown_length_is_refused_once_it_passes_the_bound(client, media, tmp_path):
    """The header's length is checked first; a stream that declares none (a browser's
    recording) is stopped as it passes the bound."""
    from data_prep.lipreading import ClipSkipped
    from pipelines.inference.lipreading import VideoTranscriber
    from pipelines.inference.long_video import transcribe_long

    path = tmp_path / "lecture.mp4"
    path.write_bytes(media["long"][1])
    transcriber = VideoTranscriber(client.app.state.reader.export, mode="ctc_greedy")
    with pytest.raises(ClipSkipped) as refused:
        transcribe_long(path, transcriber, longest=100)
    assert refused.value.reason == "too_long" and "4 s" in refused.value.detail


def test_a_short_ctc_upload_has_word_times_and_subtitles(client, media):
    response = post(client, media["short"], mode="ctc_greedy", subtitles="vtt")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["long"] is False and body["text"]
    assert [w["word"] for w in body["words"]] == body["text"].split()
    assert body["subtitles"].startswith("WEBVTT") and body["words"][0]["word"] in body["subtitles"]
    assert set(body["seconds"]) == {"prepare", "model", "words"}


def test_an_unknown_subtitle_format_is_a_400(client, media):
    response = post(client, media["short"], subtitles="ass")
    assert response.status_code == 400 and "subtitles" in response.json()["detail"]
