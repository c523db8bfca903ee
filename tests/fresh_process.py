"""Runs a script in a fresh Python where the project is not importable; returns its JSON.

The project is installed (editable) in the environment, so the guard blocks its packages on
the import path itself: anything in the export that reached for project code would fail.
"""

import json
import os
import subprocess
import sys
import textwrap

GUARD = """
import importlib.abc, sys

class _BlockProject(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pipelines", "models", "data_prep", "configs", "bench", "tests"):
            raise ImportError(f"project module {name} imported by the fresh process")
        return None

sys.meta_path.insert(0, _BlockProject())
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
