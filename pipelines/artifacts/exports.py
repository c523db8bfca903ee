"""SavedModel exports on disk: the graph plus assets.extra/lipseq.json, written atomically."""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ml_collections
import tensorflow as tf

from configs.upgrade import upgrade_config
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


def export_config(info: dict[str, Any]) -> ml_collections.ConfigDict:
    """The experiment config an export was made with, upgraded to today's keys."""
    return upgrade_config(info["config"], info["task"])


LM_OPTIONS = ("lm_weight", "lm_length_bonus")
# The raw inputs each modality's signatures take, in their positional order.
MODALITY_INPUTS = {
    "video": ("frames", "lengths"),
    "audio": ("audio", "audio_lengths"),
    "audio_visual": ("frames", "lengths", "audio", "audio_lengths"),
    "text": ("source",),
}


@dataclass(frozen=True)
class SignatureEntry:
    """What one signature of an export reads and how it decodes (the info file's catalogue).

    mode: the search (ctc_greedy, ctc_beam, attention, joint; beam, greedy for text);
    grammar: restricted to the configured grammar; fusion: shallow fusion with the export's
    language model (lm_weight and lm_length_bonus among its inputs).
    """

    name: str
    modality: str
    mode: str
    grammar: bool = False
    fusion: bool = False
    inputs: tuple[str, ...] = ()

    @property
    def mode_name(self) -> str:
        """The mode as users name it: fused modes end in _lm (attention_lm)."""
        return f"{self.mode}_lm" if self.fusion else self.mode

    def describe(self) -> dict[str, Any]:
        return {
            "modality": self.modality,
            "mode": self.mode,
            "grammar": self.grammar,
            "fusion": self.fusion,
            "inputs": list(self.inputs),
        }


def signature_catalogue(
    signatures: dict[str, Any], described: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The catalogue an export stores: each signature's description (modality, mode, grammar,
    fusion from `described`) with its inputs in the order its function takes them."""
    return {
        name: SignatureEntry(
            name=name,
            inputs=_tensor_inputs(signatures[name]),
            **described[name],
        ).describe()
        for name in sorted(signatures)
    }


def _tensor_inputs(function) -> tuple[str, ...]:
    """The names of a concrete function's tensor inputs in calling order (Python-valued
    arguments bound when it was traced, such as a mode's name, are left out)."""
    arguments = function.structured_input_signature[0]
    return tuple(spec.name for spec in arguments if isinstance(spec, tf.TensorSpec))


def read_catalogue(info: dict[str, Any]) -> dict[str, SignatureEntry]:
    """Signature name -> SignatureEntry of an export, from its stored catalogue."""
    if "catalogue" not in info:
        return _catalogue_from_names(info) if "signatures" in info else {}
    return {
        name: SignatureEntry(name=name, **{**entry, "inputs": tuple(entry["inputs"])})
        for name, entry in info["catalogue"].items()
    }


def _catalogue_from_names(info: dict[str, Any]) -> dict[str, SignatureEntry]:
    """Exports made before the catalogue (the grid_s1 release among them) list signature
    names only; their names follow `[<modality>_]<mode>[_lm][_grammar]`, read here alone."""
    text = "frame_shape" not in info
    modalities = ["text"] if text else info.get("modalities") or ["video"]
    catalogue = {}
    for name in info["signatures"]:
        if name == "serving_default":
            continue
        rest, grammar = _strip(name, "_grammar")
        rest, fusion = _strip(rest, "_lm")
        modality = next((m for m in modalities if rest.startswith(f"{m}_")), modalities[0])
        mode = rest.removeprefix(f"{modality}_") if len(modalities) > 1 else rest
        inputs = MODALITY_INPUTS[modality] + (LM_OPTIONS if fusion else ())
        catalogue[name] = SignatureEntry(name, modality, mode, grammar, fusion, inputs)
    default = catalogue.get(info.get("serving_default"))
    if default is None:  # text exports: serving_default is a beam search of its own
        default = SignatureEntry("", "text", "beam", inputs=MODALITY_INPUTS["text"])
    catalogue["serving_default"] = dataclasses.replace(default, name="serving_default")
    return catalogue


def _strip(name: str, suffix: str) -> tuple[str, bool]:
    return (name.removesuffix(suffix), True) if name.endswith(suffix) else (name, False)


def signature(loaded, export_dir: str | Path, name: str, info: dict | None = None, **lm_options):
    """A named signature of a loaded export, called with its inputs by keyword or in the
    order its catalogue entry lists them; the available names in the error.

    A signature fused with a language model takes lm_weight and lm_length_bonus as inputs;
    they are bound here (to `lm_options`, else the export's configured values), so it is
    called with the same arguments as its unfused twin.
    """
    info = info or read_export_info(export_dir)  # callers holding the export pass it
    if name not in loaded.signatures:
        raise NotAnExportError(
            f"{export_dir} has no signature {name!r}; it has "
            f"{', '.join(sorted(loaded.signatures))}"
        )
    # A task that describes no signatures gets keyword calls only.
    entry = read_catalogue(info).get(name) or SignatureEntry(name, "", "")
    function = loaded.signatures[name]
    bound = {}
    if entry.fusion:
        stored = info["language_model"]
        bound = {
            key: tf.constant(
                float(stored[key] if lm_options.get(key) is None else lm_options[key]), tf.float32
            )
            for key in LM_OPTIONS
        }
    order = [key for key in entry.inputs if key not in LM_OPTIONS]

    def call(*args, **kwargs):
        kwargs.update(zip(order, args, strict=False))
        return function(**kwargs, **bound)

    return call
