"""Flag parsing shared by the entry points: config overrides get clear errors.

An unknown `--config.some.key=...` names the key and lists the valid keys at that level; a
value of the wrong type names the key, the expected type and the value.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import ml_collections
from absl import app, flags

_OVERRIDE = re.compile(r"^--?(config)\.([\w.]+)(?:=(.*))?$")
_CONFIG_FILE = re.compile(r"^--?config=(.+)$")


def _load_config(path: str) -> ml_collections.ConfigDict | None:
    spec = importlib.util.spec_from_file_location("_lipseq_config", path)
    if spec is None or spec.loader is None or not Path(path).is_file():
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def describe_override_error(argv: list[str]) -> str | None:
    """The first bad --config.* override in argv, explained; None when they are all valid."""
    config_file = next((m.group(1) for a in argv if (m := _CONFIG_FILE.match(a))), None)
    if not config_file:
        return None
    try:
        config = _load_config(config_file)
    except Exception as error:  # noqa: BLE001  report the config file's own failure
        return f"cannot load config file {config_file}: {type(error).__name__}: {error}"
    if config is None:
        return f"config file {config_file} not found"
    for argument in argv:
        match = _OVERRIDE.match(argument)
        if not match:
            continue
        node, walked = config, "config"
        for part in match.group(2).split("."):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
                return (
                    f"unknown config key {walked}.{part} (from {argument}); valid keys in "
                    f"{walked}: {', '.join(valid)}"
                )
            node, walked = node[part], f"{walked}.{part}"
        value = match.group(3)
        if value is not None and isinstance(node, int | float) and not isinstance(node, bool):
            try:
                type(node)(value) if isinstance(node, int) else float(value)
            except ValueError:
                return f"{walked} expects {type(node).__name__} (default {node!r}), got {value!r}"
    return None


def parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing that explains bad config overrides instead of raising tracebacks."""
    try:
        return flags.FLAGS(argv)
    except Exception as error:  # noqa: BLE001  absl and ml_collections raise many types
        message = describe_override_error(argv) or str(error)
        sys.stderr.write(f"{Path(argv[0]).name}: error: {message}\n")
        sys.exit(2)


def run(main) -> None:
    """app.run with parse_flags."""
    app.run(main, flags_parser=parse_flags)
