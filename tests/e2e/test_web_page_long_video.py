"""The web page with a long video in a real headless browser: the pieces, the no-face gap, the
words timed over the whole video and the subtitles the service answers, shown and offered for
download. The long-video threshold is lowered for the served app (same process), so a
9-second clip goes the long way and the test stays short."""

import json
import urllib.request
import uuid

import numpy as np
import pytest

import pipelines.inference.long_video as long_video
from data_prep.video import read_video
from tests.e2e.test_web_page import browser, serving, wait_for  # noqa: F401 (a fixture)
from tests.e2e.test_web_page import pytestmark as web_page_marks
from tests.pipelines.serving.test_long_video import write_video

pytestmark = web_page_marks


@pytest.fixture(scope="module")
def server_url():
    """The service on a free loopback port, in this process (so the threshold patch reaches
    it)."""
    from pipelines.serving.service import create_app

    with serving(create_app("grid_s1")) as url:
        yield url


def post_video(url: str, path, fields: dict) -> dict:
    """The service's JSON answer to a multipart upload, sent as the page sends it."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; '
        f'filename="{path.name}"\r\nContent-Type: video/mp4\r\n\r\n'.encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url + "/v1/transcribe",
        data=b"".join(parts),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.load(response)


def test_a_long_video_shows_its_pieces_gap_words_and_subtitles(server_url, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from data_prep.synthetic.faces import write_synthetic_corpus

    clips = write_synthetic_corpus(tmp_path / "faces", 2, seed=11)["clips"]
    parts = [read_video(clip["video"], target_fps=25.0).frames for clip in clips]
    blank = np.full((50, *parts[0].shape[1:]), 90, np.uint8)  # 2 s with no face
    video = write_video(tmp_path / "talk.mp4", list(np.concatenate([parts[0], blank, parts[1]])))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(long_video, "LONG_VIDEO_SECONDS", 5.0)
        expected = post_video(server_url, video, {"mode": "ctc_greedy", "subtitles": "vtt"})
        assert expected["long"] and expected["gaps"] and expected["words"]
        browser.get(server_url + "/")
        wait_for(browser, lambda d: len(Select(d.find_element(By.ID, "mode")).options) >= 4)
        browser.find_element(By.ID, "video-file").send_keys(str(video))
        Select(browser.find_element(By.ID, "mode")).select_by_value("ctc_greedy")
        Select(browser.find_element(By.ID, "subtitles")).select_by_value("vtt")
        browser.find_element(By.ID, "submit").click()
        wait_for(browser, lambda d: d.find_element(By.ID, "result").is_displayed())

    def table(name):
        rows = browser.find_elements(By.CSS_SELECTOR, f"#{name} tbody tr")
        return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]

    assert browser.find_element(By.ID, "transcript").text == expected["text"]
    words = expected["words"]
    assert table("words") == [[w["word"], f"{w['start']:.2f}", f"{w['end']:.2f}"] for w in words]
    assert table("pieces") == [
        [f"{p['start']:.2f}", f"{p['end']:.2f}", p["text"], f"{p['roi_confidence']:.2f}"]
        for p in expected["pieces"]
    ]
    gap = expected["gaps"][0]
    assert f"{gap['start']:.1f}–{gap['end']:.1f} s" in browser.find_element(By.ID, "gaps").text
    assert f"in {len(expected['pieces'])} pieces" in browser.find_element(By.ID, "timing").text
    assert not browser.find_element(By.ID, "pictures").is_displayed()
    link = browser.find_element(By.ID, "subtitles-link")
    assert link.is_displayed() and link.get_attribute("download") == "transcript.vtt"
    offered = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(document.getElementById('subtitles-link').href).then(r => r.text()).then(done);"
    )
    assert offered == expected["subtitles"] and offered.startswith("WEBVTT")
    screenshot = tmp_path / "web_page_long_video.png"
    assert browser.save_screenshot(str(screenshot))
    print(f"screenshot: {screenshot}")
