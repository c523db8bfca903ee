"""The web page in a real headless browser (Debian's chromium driven by selenium): upload a
generated face clip and read off the page the text, score and word times the in-process
transcriber gives; record from a (fake) webcam and see the service's reason on the page.
Screenshots are saved beside the test's files."""

import contextlib
import re
import shutil
import socket
import threading
import time

import pytest

from pipelines.artifacts.exports import released_models

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.skipif(
        "grid_s1" not in released_models(), reason="no grid_s1 release in models/releases"
    ),
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="needs Debian's chromium and chromium-driver (apt install chromium "
        "chromium-driver; .ci/run installs them)",
    ),
]


@pytest.fixture(scope="module")
def served():
    """(the page's address, the export the service loaded): the in-process reference reads
    with the service's own export, as a second load of grid_s1 costs tens of seconds."""
    import pipelines.serving.service as service

    opened = []

    class Recorded(service.LipReadingExport):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "LipReadingExport", Recorded)
        app = service.create_app("grid_s1")
    with serving(app) as url:
        yield url, opened[0]


@contextlib.contextmanager
def serving(app):
    """The app served by uvicorn on a free loopback port in a thread of this process (so a
    test's patches reach it); yields its address."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start within 60 s"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server_url(served):
    return served[0]


def chromium(*more_arguments: str):
    """Headless chromium with a fake camera granted without a prompt (a synthetic picture,
    unless `more_arguments` give it a file to play)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1100,1600",
        "--use-fake-ui-for-media-stream",  # grant the camera without a prompt
        "--use-fake-device-for-media-stream",  # a synthetic camera picture
        *more_arguments,
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def wait_for(driver, condition, seconds=120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(condition)


def test_uploading_a_clip_shows_what_the_in_process_transcriber_reads(served, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from data_prep.synthetic.faces import write_synthetic_corpus
    from pipelines.inference.lipreading import VideoTranscriber
    from pipelines.inference.words import timed_words

    server_url, export = served
    video = write_synthetic_corpus(tmp_path / "faces", 1, seed=5)["clips"][0]["video"]
    expected = VideoTranscriber(export, "attention", grammar=True).transcribe(video)
    browser.get(server_url + "/")
    wait_for(browser, lambda d: len(Select(d.find_element(By.ID, "mode")).options) >= 4)
    assert "grid_s1" in browser.find_element(By.ID, "model-line").text
    browser.find_element(By.ID, "video-file").send_keys(str(video))
    Select(browser.find_element(By.ID, "mode")).select_by_value("attention")
    browser.find_element(By.ID, "grammar").click()
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "result").is_displayed())
    assert browser.find_element(By.ID, "transcript").text == expected["text"]
    timing = browser.find_element(By.ID, "timing").text
    shown = re.match(r"(\w+), score (\S+); (\d+) frames;", timing)
    assert shown, timing
    frames = len(expected["crops"])
    assert (shown[1], int(shown[3])) == ("attention", frames)
    # float32 search; the service rounds the score to 4 decimals
    assert float(shown[2]) == pytest.approx(expected["score"], rel=1e-3, abs=1e-4)
    fps = export.settings.target_fps
    words = timed_words(export, expected["text"], expected["alignments"], expected["crops"], fps)
    rows = browser.find_elements(By.CSS_SELECTOR, "#words tbody tr")
    cells = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert cells == [[w["word"], f"{w['start']:.2f}", f"{w['end']:.2f}"] for w in words]
    for picture in ("crops", "attention"):
        width = browser.execute_script(f"return document.getElementById('{picture}').naturalWidth")
        assert width > 0, f"the {picture} picture did not load"
    screenshot = tmp_path / "web_page_upload.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {screenshot}")


def test_a_webcam_recording_reaches_the_service_and_its_answer_is_shown(
    server_url, browser, tmp_path
):
    from selenium.webdriver.common.by import By

    browser.get(server_url + "/")
    wait_for(browser, lambda d: d.find_element(By.ID, "mode").get_attribute("value"))
    browser.find_element(By.ID, "record").click()
    wait_for(browser, lambda d: "Recorded" in d.find_element(By.ID, "status").text, 30)
    browser.find_element(By.ID, "submit").click()
    # The fake camera shows a flat grey test pattern, not a face: the clip core refuses such
    # frames as damaged (as `lipseq prepare` does), and the page must show the service's reason.
    error = wait_for(
        browser,
        lambda d: (
            d.find_element(By.ID, "error").is_displayed() and d.find_element(By.ID, "error").text
        ),
    )
    assert error.startswith("415 corrupt_frames"), error
    assert browser.save_screenshot(str(tmp_path / "web_page_webcam.png"))
