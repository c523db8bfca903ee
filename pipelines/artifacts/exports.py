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


LM_OPTIONS = ("lm_weight", "lm_length_bonus")


def signature(loaded, export_dir: str | Path, name: str, **lm_options):
    """A named signature of a loaded export, with the available names in the error.

    A signature fused with a language model takes lm_weight and lm_length_bonus as inputs;
    they are bound here (to `lm_options`, else the export's configured values), so it is
    called with the same arguments as its unfused twin.
    """
    if name not in loaded.signatures:
        raise NotAnExportError(
            f"{export_dir} has no signature {name!r}; it has {', '.join(sorted(loaded.signatures))}"
        )
    function = loaded.signatures[name]
    inputs = function.structured_input_signature[1]
    if "lm_weight" not in inputs:
        return function
    stored = read_export_info(export_dir)["language_model"]
    bound = {
        key: tf.constant(
            float(stored[key] if lm_options.get(key) is None else lm_options[key]), tf.float32
        )
        for key in LM_OPTIONS
    }
    # Positional callers pass the other inputs in the order the unfused twin takes them.
    free = [key for key in inputs if key not in LM_OPTIONS]
    order = [key for key in ("frames", "lengths", "audio", "audio_lengths") if key in free]

    def call(*args, **kwargs):
        kwargs.update(zip(order, args, strict=False))
        return function(**kwargs, **bound)

    return call
