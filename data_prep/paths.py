"""Where the project finds real corpora and writes its outputs."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "LIPSEQ_DATA_DIR"


def shared_data_dir() -> Path:
    """The real-corpus directory: $LIPSEQ_DATA_DIR, else ../shared/data beside the project."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return (PROJECT_ROOT.parent / "shared" / "data").resolve()
