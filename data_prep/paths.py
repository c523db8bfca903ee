"""Where the project finds real corpora and writes its outputs."""

import importlib.metadata
import os
import tomllib
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "LIPSEQ_DATA_DIR"
DEFAULT_VERSION = "0.1.0"


def shared_data_dir() -> Path:
    """The real-corpus directory: $LIPSEQ_DATA_DIR, else ../shared/data beside the project."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return (PROJECT_ROOT.parent / "shared" / "data").resolve()


def project_version() -> str:
    """The version of the checkout's pyproject.toml, else of the installed package."""
    try:
        with open(PROJECT_ROOT / "pyproject.toml", "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        pass
    try:
        return importlib.metadata.version("lipseq")
    except importlib.metadata.PackageNotFoundError:
        return DEFAULT_VERSION
