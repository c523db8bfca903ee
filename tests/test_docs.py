"""Docs that cannot drift: every command in README.md, BUILD.md and docs/results/ names a real
verb, real flags, real config files and real config keys; the cheap ones run. BUILD.md's command
reference lists every flag of every verb and no other; README's results summary is the table
bench/readme_summary.py reads from the result files; README stays a front page."""

import importlib
import os
import re
import shlex
import subprocess
import sys

import pytest
from absl import flags

from bench.readme_summary import HEADER, markdown_table, summary_rows
from data_prep.paths import PROJECT_ROOT
from pipelines.cli import VERBS
from pipelines.cli.common import define_global_flags, describe_override_error, load_config_file

DOCS = ("README.md", "BUILD.md") + tuple(
    sorted(p.relative_to(PROJECT_ROOT).as_posix() for p in (PROJECT_ROOT / "docs").rglob("*.md"))
)
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
    define_global_flags(values)
    return values


def global_flags() -> set[str]:
    """The flags every verb takes (pipelines.cli.common.define_global_flags)."""
    values = flags.FlagValues()
    define_global_flags(values)
    return set(values)


ALL = [(doc, command) for doc in DOCS for command in shell_commands(doc)]
INVOCATIONS = [(doc, command, args) for doc, command in ALL for args in lipseq_invocations(command)]


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


def _section(doc: str, heading: str) -> str:
    """The text under a `## heading` of a doc, up to the next `## `."""
    text = (PROJECT_ROOT / doc).read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"{doc} has no section '## {heading}'"
    return match.group(1)


def command_reference() -> dict[str, set[str]]:
    """BUILD.md's command reference: verb -> the flags its row names."""
    rows = {}
    for line in _section("BUILD.md", "Command reference").splitlines():
        match = re.match(r"\| `(\w+)` \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = set(re.findall(r"`--(\w+)", match.group(2)))
    return rows


def real_flags(verb: str) -> set[str]:
    """Every flag a verb defines beside the global ones (absl FlagValues keyed by name; no
    short aliases here)."""
    defined = {name for name, flag in _flag_values(verb)._flags().items() if name == flag.name}
    return defined - global_flags()


def test_the_command_reference_lists_every_verb():
    assert set(command_reference()) == set(VERBS)


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_the_command_reference_lists_each_verbs_real_flags(verb):
    documented, real = command_reference()[verb], real_flags(verb)
    assert not documented - real, f"BUILD.md names flags lipseq {verb} lacks: {documented - real}"
    assert not real - documented, f"BUILD.md's reference misses lipseq {verb} {real - documented}"


def test_the_command_reference_names_the_flags_every_verb_takes():
    reference = _section("BUILD.md", "Command reference")
    for name in global_flags():
        assert re.search(rf"^Every verb takes .*`--{name}`", reference, re.M), name


def test_the_make_target_table_lists_every_target():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    listed = set(re.findall(r"^\| `make ([\w-]+)` \|", _section("BUILD.md", "Install"), re.M))
    assert listed == targets, (sorted(targets - listed), sorted(listed - targets))


def test_build_md_shows_all_four_tasks_and_the_layering():
    text = (PROJECT_ROOT / "BUILD.md").read_text(encoding="utf-8")
    architecture = _section("BUILD.md", "Architecture and layering")
    for task in ("translation", "lipreading", "audio_visual", "language_model"):
        assert task in architecture, task
    assert "## From a video file to text" in text
    assert "requires_modules" in text


def summary_table_in_readme() -> list[tuple[str, ...]]:
    """The rows of the first table under README's `## Results`, header dropped."""
    rows = []
    for line in _section("README.md", "Results").splitlines():
        if line.startswith("|"):
            rows.append(tuple(cell.strip() for cell in line.strip().strip("|").split(" | ")))
        elif rows:
            break
    return rows


def test_readme_summary_table_is_the_one_read_from_the_results():
    table = summary_table_in_readme()
    assert table and table[0] == HEADER
    expected = summary_rows()
    for row, want in zip(table[2:], expected, strict=False):
        assert row == want, f"README's summary row {row[0]!r} says {row[1]!r}; JSON: {want[1]!r}"
    assert len(table) - 2 == len(expected), "README's summary rows differ from bench.readme_summary"
    assert markdown_table(expected) in (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def test_a_readme_figure_that_disagrees_with_its_json_would_be_caught(monkeypatch):
    rows = summary_rows()
    changed = [(rows[0][0], rows[0][1].replace("WER ", "WER 1"), rows[0][2])] + rows[1:]
    monkeypatch.setattr(sys.modules[__name__], "summary_rows", lambda: changed)
    with pytest.raises(AssertionError, match="README's summary row"):
        test_readme_summary_table_is_the_one_read_from_the_results()


def test_readme_is_a_front_page():
    lines = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, len(lines)
    headings = [line for line in lines if line.startswith("## ")]
    for heading in (
        "Install",
        "Quick start",
        "Lip-read your own face",
        "Translate",
        "Train on your own corpus",
        "Serve",
        "Results",
    ):
        assert f"## {heading}" in headings, heading


def test_links_between_the_docs_resolve():
    for doc in DOCS:
        path = PROJECT_ROOT / doc
        text = re.sub(r"`[^`]*`", "", path.read_text(encoding="utf-8"))  # code is not a link
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{doc} links to missing {target}"
