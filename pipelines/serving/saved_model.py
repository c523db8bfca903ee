"""SavedModel exports on disk: the graph plus assets.extra/lipseq.json, written atomically."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import tensorflow as tf

from data_prep.atomic import atomic_directory
from data_prep.errors import NotAnExportError

INFO_PATH = Path("assets.extra") / "lipseq.json"
# Trained models shipped with the package, usable by name (`--model=grid_s1`).
RELEASES_DIR = Path(__file__).resolve().parents[2] / "models" / "releases"


def released_models() -> list[str]:
    """Names of the trained models shipped in models/releases."""
    if not RELEASES_DIR.is_dir():
        return []
    return sorted(p.name for p in RELEASES_DIR.iterdir() if (p / "export" / INFO_PATH).is_file())


def resolve_export(export_dir: str | Path) -> Path:
    """An export directory, or the export of the shipped release of that name."""
    path = Path(export_dir)
    release = RELEASES_DIR / str(export_dir) / "export"
    if not path.exists() and "/" not in str(export_dir) and (release / INFO_PATH).is_file():
        return release
    return path


def save_export(module: tf.Module, signatures: dict, info: dict, export_dir: str | Path) -> Path:
    """Saves `module` with `signatures` and `info`; the directory appears whole or not at all."""
    export_dir = Path(export_dir)
    with atomic_directory(export_dir) as tmp:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        (tmp / INFO_PATH).parent.mkdir(exist_ok=True)
        (tmp / INFO_PATH).write_text(json.dumps(info, indent=2, default=str))
    return export_dir


def read_export_info(export_dir: str | Path, task: str | None = None) -> dict[str, Any]:
    """The lipseq.json of an export (a path or a release name); NotAnExportError otherwise."""
    export_dir = resolve_export(export_dir)
    if not export_dir.is_dir():
        shipped = ", ".join(released_models()) or "none"
        raise NotAnExportError(
            f"export not found: {export_dir} is not a directory (shipped models: {shipped})"
        )
    path = export_dir / INFO_PATH
    if not path.is_file() or not (export_dir / "saved_model.pb").is_file():
        raise NotAnExportError(
            f"not a lipseq export: {export_dir} has no {INFO_PATH} and saved_model.pb "
            "(make one with lipseq export --workdir=<training workdir>)"
        )
    info = json.loads(path.read_text())
    if task is not None and info.get("task") != task:
        raise NotAnExportError(
            f"{export_dir} is a {info.get('task')!r} export; this command needs a {task!r} one"
        )
    return info


def load_export(export_dir: str | Path, task: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(loaded SavedModel, info), after importing the modules whose ops the export needs."""
    info = read_export_info(export_dir, task)
    for module in info.get("requires_modules", []):
        importlib.import_module(module)
    return tf.saved_model.load(str(resolve_export(export_dir))), info


def signature(loaded, export_dir: str | Path, name: str):
    """A named signature of a loaded export, with the available names in the error."""
    if name not in loaded.signatures:
        raise NotAnExportError(
            f"{export_dir} has no signature {name!r}; it has {', '.join(sorted(loaded.signatures))}"
        )
    return loaded.signatures[name]
