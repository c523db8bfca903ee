"""Quiet by default: a `lipseq` command's stderr holds lipseq's own lines only (TensorFlow's
start-up and C++ log lines, Python warnings and other libraries' log records held back), an
error names its file once, and --verbose brings the libraries' lines back."""

import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from data_prep.audio import AudioError
from data_prep.lipreading import ClipSkipped
from data_prep.paths import PROJECT_ROOT
from data_prep.synthetic.speech import write_wav
from pipelines.artifacts.exports import released_models
from pipelines.runtime import OwnRecordsOnly, verbose_requested
from tests.cli import run_python

# What the test runner's environment may hold to quieten TensorFlow itself: left out, so that
# only lipseq's own defaults decide.
LIBRARY_SETTINGS = ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS")
# A line of TensorFlow's C++ logging (absl's format: severity, date, time, thread, file:line).
NATIVE_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]")


def lipseq_as_a_user(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in LIBRARY_SETTINGS}
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.fixture
def audio_only(tmp_path):
    """A file FFmpeg opens that holds sound and no picture."""
    samples = (np.sin(np.arange(8000) * 0.1) * 5000).astype(np.int16)
    return write_wav(samples, tmp_path / "bad" / "audioonly.wav")


@pytest.mark.skipif("grid_s1" not in released_models(), reason="the grid_s1 release is absent")
def test_a_bad_video_is_one_line_on_stderr(audio_only):
    result = lipseq_as_a_user("transcribe", "--model=grid_s1", f"--video={audio_only}")
    reason = "audio_only: the file has sound but no video stream"
    assert result.stderr == f"lipseq transcribe: error: {audio_only}: {reason}\n"
    assert result.returncode == 2 and result.stdout == ""


def test_verbose_shows_tensorflows_own_lines(audio_only, tmp_path):
    result = lipseq_as_a_user(
        "transcribe", f"--model={tmp_path}", f"--video={audio_only}", "--verbose"
    )
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and lines[-1].startswith("lipseq transcribe: error: ")
    native = [line for line in lines if NATIVE_LOG_LINE.match(line)]
    assert native, result.stderr[-2000:]


# TensorFlow's Python logger, another library's logger and a Python warning, after the quiet
# settings; lipseq's own record (the runtime module's, by its file) must still come through.
_LIBRARIES_SPEAK = """
import logging, warnings
from absl import flags
from pipelines import runtime
runtime.quiet_libraries()
flags.FLAGS.mark_as_parsed()  # as a verb's flags are before it logs
import tensorflow as tf
tf.get_logger().warning("tensorflow's record")
logging.getLogger("keras").warning("keras's record")
warnings.warn("a library's warning")
record = logging.LogRecord("absl", logging.WARNING, runtime.__file__, 1, "own record", None, None)
logging.getLogger().handle(record)
"""


def test_the_libraries_python_output_is_held_back():
    result = run_python(_LIBRARIES_SPEAK)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].endswith("] own record"), result.stderr[-2000:]


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [
        ([], False),
        (["--model=x", "--verbose"], True),
        (["-verbose"], True),
        (["--verbose=false"], False),
        (["--verbose", "--noverbose"], False),
        (["--noverbose", "--verbose=true"], True),
        (["--", "--verbose"], False),
        (["--verbose_log=1"], False),
    ],
)
def test_verbose_is_read_from_the_command_line_in_absls_spellings(argv, verbose):
    assert verbose_requested(argv) is verbose


def test_an_ffmpeg_detail_does_not_name_the_file_again(tmp_path):
    path = tmp_path / "garbage.mp4"
    detail = f"[Errno 1094995529] Invalid data found when processing input: {str(path)!r}"
    for error in (
        AudioError(path, "unreadable_audio", detail),
        ClipSkipped("garbage", str(path), "unreadable", detail),
    ):
        assert str(error).count(str(path)) == 1, str(error)
        assert str(error).endswith("Invalid data found when processing input"), str(error)


def test_a_clip_id_is_said_only_where_the_file_name_does_not_say_it():
    assert "(clip" not in str(ClipSkipped("bbaf2n", "s1/video/bbaf2n.mp4", "no_face"))
    assert str(ClipSkipped("s1_bbaf2n", "s1/video/bbaf2n.mp4", "no_face")).endswith(
        "(clip s1_bbaf2n)"
    )


def _record(pathname: str) -> logging.LogRecord:
    return logging.LogRecord("absl", logging.WARNING, pathname, 1, "a line", None, None)


def test_only_lipseqs_own_log_records_pass():
    keep = OwnRecordsOnly()
    assert keep.filter(_record(str(PROJECT_ROOT / "data_prep" / "lipreading.py")))
    assert not keep.filter(_record("/usr/lib/python3/site-packages/keras/src/saving.py"))
    assert not keep.filter(_record(str(PROJECT_ROOT / "tests" / "cli.py")))
