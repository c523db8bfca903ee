"""Runs a script in a fresh Python where the project is not importable; returns its JSON."""

import json
import os
import subprocess
import sys
import textwrap

GUARD = """
import sys
try:
    import pipelines
    sys.exit("project code is importable in the fresh process")
except ImportError:
    pass
"""


def run_without_project(script: str, cwd) -> dict:
    """Executes `script` (which prints one JSON line last) outside the project; returns it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    completed = subprocess.run(
        [sys.executable, "-c", GUARD + textwrap.dedent(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])
