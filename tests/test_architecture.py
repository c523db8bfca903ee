"""The shape of the code: folders layer (no import points up), no import circles, models/
stands alone, no task names outside the task modules, and the package installs with its
console script."""

import ast
import re
from pathlib import Path

from data_prep.paths import PROJECT_ROOT

PACKAGES = ("configs", "data_prep", "models", "pipelines")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
    }


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Project modules imported anywhere in the file (top level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a import b` imports module a.b when b is a module, else a itself.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            targets = [t for t in targets if t in modules] or [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _project_modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    graph = import_graph()
    assert len(graph) > 50  # the whole project was parsed
    assert find_cycles(graph) == []


# Bottom to top; a module may import its own layer and the ones below, never one above.
# Within a layer the folders are peers (the circle test still applies).
LAYERS = (
    ("models", "data_prep", "configs"),
    ("pipelines.runtime", "pipelines.scoring", "pipelines.plots", "pipelines.artifacts"),
    ("pipelines.inputs", "pipelines.signatures"),
    ("pipelines.inference",),
    ("pipelines.tasks",),
    ("pipelines.training",),
    ("pipelines.serving",),
    ("pipelines.evaluation", "pipelines.demo", "pipelines.cli", "pipelines.__main__", "pipelines"),
)


def layer_of(module: str) -> int:
    """The layer of a module: that of the longest prefix in LAYERS naming it."""
    matches = [
        (len(prefix), level)
        for level, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} belongs to no layer: add its folder to LAYERS"
    return max(matches)[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})"
        for name, imported in sorted(graph.items())
        for target in sorted(imported)
        if layer_of(target) > layer_of(name)
    ]


def test_the_layer_check_finds_an_upward_import():
    graph = {"pipelines.artifacts.runs": {"pipelines.tasks.base"}, "pipelines.tasks.base": set()}
    assert upward_imports(graph) == [
        "pipelines.artifacts.runs (layer 1) imports pipelines.tasks.base (layer 4)"
    ]
    assert layer_of("pipelines.cli.train") == layer_of("pipelines.evaluation") == len(LAYERS) - 1


def test_folders_layer_bottom_to_top():
    """Every project module has a layer and no import points up (BUILD.md: Layering)."""
    assert upward_imports(import_graph()) == []


def test_models_import_nothing_else_from_the_project():
    for name, imported in import_graph().items():
        if name.startswith("models"):
            outside = {m for m in imported if not m.startswith("models")}
            assert not outside, f"{name} imports {sorted(outside)}"


def test_shared_code_never_names_a_task():
    """The CLIs, the loop and export ask the task; they never test which task it is."""
    task_name = re.compile(r"""["'](translation|lipreading)["']""")
    shared = [
        *(PROJECT_ROOT / "pipelines" / "cli").glob("*.py"),
        *(PROJECT_ROOT / "pipelines" / "training").glob("*.py"),
        *(PROJECT_ROOT / "pipelines" / "artifacts").glob("*.py"),
        PROJECT_ROOT / "pipelines" / "serving" / "export.py",
        PROJECT_ROOT / "pipelines" / "evaluation.py",
    ]
    for path in shared:
        text = path.read_text(encoding="utf-8")
        assert not task_name.search(text), f"{path.relative_to(PROJECT_ROOT)} names a task"
        assert "config.task ==" not in text and "info[\"task\"] ==" not in text


def test_one_record_schema_and_one_atomic_writer():
    """Record features are declared only in data_prep/records.py; files are written through
    data_prep/atomic.py (no hand-made .tmp + os.replace elsewhere)."""
    for name, path in _project_modules().items():
        text = path.read_text(encoding="utf-8")
        if name != "data_prep.records":
            assert "tf.io.FixedLenFeature(" not in text, f"{name} declares record features"
        if name != "data_prep.atomic":
            assert "os.replace(" not in text, f"{name} writes files by hand"


def late_imports_without_a_reason(path: Path) -> list[int]:
    """Lines of imports inside functions not under a `# Late: <reason>` comment (blank lines
    and other imports may stand between)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    missing = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if not isinstance(inner, ast.Import | ast.ImportFrom):
                continue
            above = inner.lineno - 2
            while above >= 0 and (
                not lines[above].strip() or lines[above].strip().startswith(("import ", "from "))
            ):
                above -= 1
            if above < 0 or not lines[above].strip().startswith("# Late:"):
                missing.append(inner.lineno)
    return missing


def test_imports_stand_at_the_top_or_say_why_they_load_late():
    """A file's first lines say what it depends on; an import inside a function is a heavy
    or order-bound dependency, with its one-line reason."""
    offenders = {
        name: lines
        for name, path in _project_modules().items()
        if (lines := late_imports_without_a_reason(path))
    }
    assert offenders == {}


def test_the_late_import_check_finds_an_import_without_a_reason(tmp_path):
    source = tmp_path / "module.py"
    source.write_text(
        "def a():\n    import json\n\n\ndef b():\n    # Late: heavy.\n    import json\n"
    )
    assert late_imports_without_a_reason(source) == [2]
