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


def train_command(config: str, data, workdir, steps: int, *flags: str) -> list[str]:
    """The `lipseq train` command line (as `python -m pipelines`) of `config` on prepared
    `data` for `steps` steps, checkpoints every 2 and no validation, plus `flags`: for tests
    that start training processes themselves (several workers, a kill)."""
    return [
        sys.executable,
        "-m",
        "pipelines",
        "train",
        f"--config={config}",
        f"--workdir={workdir}",
        f"--config.data.prepared_dir={data}",
        f"--config.num_train_steps={steps}",
        "--config.checkpoint_every=2",
        "--config.eval_every=0",
        *flags,
    ]
