"""A bench's console shows its own lines by default and the libraries' only with --verbose."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _help(*extra: str) -> subprocess.CompletedProcess:
    # text_bench imports TensorFlow at its top, which prints its start-up lines to fd 2.
    return subprocess.run(
        [sys.executable, "-m", "bench.text_bench", "--help", *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_a_bench_is_quiet_by_default_and_shows_the_libraries_with_verbose():
    quiet, verbose = _help(), _help("--verbose")
    assert "--num_sentences" in quiet.stdout and "--num_sentences" in verbose.stdout
    assert quiet.stderr == ""
    # TensorFlow's own start-up lines (its oneDNN notice) reach the console only when asked.
    assert "oneDNN" in verbose.stderr


def test_python_errors_still_reach_stderr_when_quiet():
    out = subprocess.run(
        [sys.executable, "-m", "bench.memory_bench", "--no_such_flag"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode != 0
    assert "no_such_flag" in out.stderr
