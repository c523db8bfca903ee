"""What every `lipseq` verb shares: config files by path or name, flag errors, user errors.

`--config` takes a path (`configs/grid_lipnet.py`), a variant (`configs/grid_lipnet.py:tiny`)
or the bare name of a config shipped with the package (`grid_lipnet`). An unknown
`--config.some.key=...` names the key and lists the valid keys at that level; a value of the
wrong type names the key, the expected type and the value. A LipseqError raised by a verb is
printed as one line (`lipseq <verb>: error: ...`) with exit status 2. Every verb takes
--verbose.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import ml_collections
from absl import app, flags

from data_prep.errors import LipseqError

_OVERRIDE = re.compile(r"^--?(config)\.([\w.]+)(?:=(.*))?$")
_CONFIG_FILE = re.compile(r"^(--?config=)(.+)$")
CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"


def resolve_config_argument(value: str) -> str:
    """A --config value with a bare shipped-config name (`grid_lipnet[:variant]`) made a path."""
    path, colon, variant = value.partition(":")
    if "/" not in path and not path.endswith(".py") and not Path(path).exists():
        shipped = CONFIGS_DIR / f"{path}.py"
        if shipped.is_file():
            return f"{shipped}{colon}{variant}"
    return value


def shipped_configs() -> list[str]:
    """Names of the experiment configs shipped with the package."""
    return sorted(
        p.stem
        for p in CONFIGS_DIR.glob("*.py")
        if not p.name.startswith("_") and "def get_config" in p.read_text()
    )


def load_config_file(value: str) -> ml_collections.ConfigDict | None:
    """The config a --config value names (`path[:variant]`), or None when the file is absent."""
    path, _, variant = resolve_config_argument(value).partition(":")
    spec = importlib.util.spec_from_file_location("_lipseq_config", path)
    if spec is None or spec.loader is None or not Path(path).is_file():
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant) if variant else module.get_config()


def describe_override_error(argv: list[str]) -> str | None:
    """The first bad --config.* override in argv, explained; None when they are all valid."""
    config_file = next((m.group(2) for a in argv if (m := _CONFIG_FILE.match(a))), None)
    if not config_file:
        return None
    try:
        config = load_config_file(config_file)
    except Exception as error:  # noqa: BLE001  report the config file's own failure
        return f"cannot load config file {config_file}: {type(error).__name__}: {error}"
    if config is None:
        return (
            f"config file {config_file} not found (a path, or one of the shipped configs: "
            f"{', '.join(shipped_configs())})"
        )
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
    """absl flag parsing that explains a bad config file or override in one line."""
    argv = [
        f"{m.group(1)}{resolve_config_argument(m.group(2))}" if (m := _CONFIG_FILE.match(a)) else a
        for a in argv
    ]
    try:
        remaining = flags.FLAGS(argv)
        if "config" in flags.FLAGS and flags.FLAGS["config"].present:
            # ml_collections reports a config file that failed to load only on first use.
            flags.FLAGS.config.keys()
        return remaining
    except Exception as error:  # noqa: BLE001  absl and ml_collections raise many types
        message = describe_override_error(argv) or str(error)
    sys.stderr.write(f"{argv[0]}: error: {message}\n")
    sys.exit(2)


def define_global_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The flags every verb takes. --verbose is also read from the raw command line before
    TensorFlow loads (pipelines.runtime.verbose_requested); defining it lets absl accept it."""
    flags.DEFINE_bool(
        "verbose",
        False,
        "Show the libraries' console output too: TensorFlow's start-up and C++ log lines, "
        "Python warnings, other libraries' log records, the HTTP server's own lines.",
        flag_values=flag_values,
    )


def no_arguments(argv: list[str]) -> None:
    """Rejects positional arguments (every verb takes flags only)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


def run(main, argv: list[str]) -> None:
    """app.run with parse_flags; a LipseqError becomes one line on stderr and exit status 2."""

    def guarded(args: list[str]) -> None:
        try:
            main(args)
        except LipseqError as error:
            sys.stderr.write(f"{argv[0]}: error: {error}\n")
            sys.exit(2)

    app.run(guarded, argv=argv, flags_parser=parse_flags)
