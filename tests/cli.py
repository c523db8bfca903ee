"""Runs the `lipseq` command (or Python code) in a subprocess, as a user would, from the project
root."""

import os
import subprocess
import sys

from data_prep.paths import PROJECT_ROOT


def run_lipseq(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`lipseq <args>` (as `python -m pipelines`); TensorFlow's start-up lines silenced."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def run_python(code: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -c code args` from the project root, in a fresh interpreter: for work that flips
    a process-wide switch (TensorFlow's op determinism cannot be scoped or undone publicly),
    which must not leak into the test process."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
