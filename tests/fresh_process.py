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


def distributions_needed(names: list[str]) -> dict:
    """The installed distributions that `pip install <names>` would give: names and their
    requirements (no extras), transitively; canonical name -> Distribution."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found, todo = {}, list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        try:
            found[name] = distribution(name)
        except PackageNotFoundError:
            continue  # a requirement of another platform or Python
        for text in found[name].requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return found


def site_with_only(names: list[str], folder) -> str:
    """A folder of links to the files of `names` and their dependencies, and nothing else:
    on its own on the import path, it is the environment `pip install <names>` makes."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for dist in distributions_needed(names).values():
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            target = Path(dist.locate_file(top))
            if top != ".." and target.exists() and not (folder / top).exists():
                (folder / top).symlink_to(target)
    return str(folder)


def run_without_project(script: str, cwd, only: list[str] | None = None) -> dict:
    """Executes `script` (which prints one JSON line last) outside the project; returns it.

    With `only`, the process sees no installed package but those named and their
    dependencies (Python runs without its site packages: -S).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    flags = []
    if only is not None:
        env["PYTHONPATH"] = site_with_only(only, os.path.join(cwd, "only-site"))
        flags = ["-S", "-s"]
    completed = subprocess.run(
        [sys.executable, *flags, "-c", GUARD + textwrap.dedent(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])
