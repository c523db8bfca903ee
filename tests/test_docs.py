"""Docs that cannot drift: every command in README.md and BUILD.md names a real verb, real
flags, real config files and real config keys; the cheap ones run."""

import importlib
import os
import re
import shlex
import subprocess
import sys

import pytest
from absl import flags

from data_prep.paths import PROJECT_ROOT
from pipelines.cli import VERBS
from pipelines.cli.common import describe_override_error, load_config_file

DOCS = ("README.md", "BUILD.md")
FENCE = re.compile(r"```bash\n(.*?)```", re.S)
LIPSEQ = re.compile(r"^(?:\S*/)?lipseq$")


def shell_commands(doc: str) -> list[str]:
    """Every command line in the doc's bash fences, continuations joined, comments dropped."""
    commands = []
    for block in FENCE.findall((PROJECT_ROOT / doc).read_text(encoding="utf-8")):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def lipseq_invocations(command: str) -> list[list[str]]:
    """The argument lists after `lipseq` (or `python -m pipelines`) in one shell line."""
    try:
        tokens = shlex.split(command, comments=True)
    except ValueError:  # a quoted value that spans lines (e.g. an exported JSON variable)
        tokens = command.split("#")[0].split()
    found, current = [], None
    for i, token in enumerate(tokens):
        if token in ("|", "&&", ";", "||"):
            current = None
        elif LIPSEQ.match(token) or (token == "pipelines" and tokens[i - 1] == "-m"):
            current = []
            found.append(current)
        elif current is not None:
            current.append(token)
    return found


def _flag_values(verb: str) -> flags.FlagValues:
    values = flags.FlagValues()
    importlib.import_module(f"pipelines.cli.{verb}").define_flags(values)
    return values


ALL = [(doc, command) for doc in DOCS for command in shell_commands(doc)]
INVOCATIONS = [
    (doc, command, args) for doc, command in ALL for args in lipseq_invocations(command)
]


def test_the_docs_document_every_verb():
    documented = {args[0] for _, _, args in INVOCATIONS if args}
    assert documented >= set(VERBS) - {"demo"}, sorted(set(VERBS) - documented)
    assert len(INVOCATIONS) >= 15


@pytest.mark.parametrize(("doc", "command", "args"), INVOCATIONS, ids=lambda x: str(x)[:60])
def test_documented_command_is_real(doc, command, args):
    where = f"{doc}: {command}"
    if not args or args[0] in ("--help", "-h", "--version"):
        return
    verb, options = args[0], args[1:]
    assert verb in VERBS, f"unknown verb {verb!r} in {where}"
    known = _flag_values(verb)
    config_file = None
    for option in options:
        if not option.startswith("-"):
            continue  # a positional value such as a shell word after the flags
        name, _, value = option.lstrip("-").partition("=")
        if name == "config":
            config_file = value
            assert load_config_file(value) is not None, f"config {value} not found in {where}"
        elif name.startswith("config."):
            assert config_file, f"{option} before --config in {where}"
            problem = describe_override_error([verb, f"--config={config_file}", option])
            assert problem is None, f"{problem} in {where}"
        else:
            bare = name[2:] if name.startswith("no") and name[2:] in known else name
            assert bare in known, f"unknown flag --{name} for lipseq {verb} in {where}"


def test_documented_make_targets_exist():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    for doc, command in ALL:
        for match in re.finditer(r"(?:^|&&|;)\s*make\s+([\w-]+)", command):
            assert match.group(1) in targets, f"make {match.group(1)} in {doc}"


def test_config_files_named_in_the_docs_exist():
    for doc in DOCS:
        for path in set(re.findall(r"configs/\w+\.py", (PROJECT_ROOT / doc).read_text())):
            assert (PROJECT_ROOT / path).is_file(), f"{doc} names missing {path}"


def test_the_help_commands_run():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    top = subprocess.run(
        [sys.executable, "-m", "pipelines", "--help"], capture_output=True, text=True, env=env
    )
    assert top.returncode == 0 and all(verb in top.stdout for verb in VERBS)
    verb = subprocess.run(
        [sys.executable, "-m", "pipelines", "export", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert verb.returncode == 0 and "--workdir" in verb.stdout and "--checkpoint" in verb.stdout


def test_an_unknown_flag_in_a_doc_would_be_caught():
    bad = lipseq_invocations(".venv/bin/lipseq export --workdir=x --export_dri=y")[0]
    with pytest.raises(AssertionError, match="unknown flag --export_dri"):
        test_documented_command_is_real("t", "t", bad)
    bad = lipseq_invocations("lipseq train --config=configs/demo_toy.py --config.batch_sz=3")[0]
    with pytest.raises(AssertionError, match="unknown config key"):
        test_documented_command_is_real("t", "t", bad)
