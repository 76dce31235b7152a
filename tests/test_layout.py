"""The package's shape: role folders whose imports point one way, no cycles, small modules,
imports at module heads, and no reference outside the repository."""
import ast
import re
from pathlib import Path

import pytest

from mosslib.apps.cli import COMMANDS, build_parser

PKG = Path(__file__).resolve().parents[1] / "mosslib"
ROLES = ("model", "data", "measure", "method", "apps")
# who may import whom (besides itself): apps -> method -> model; method -> data, measure;
# measure and data know nothing of training, runs or screens
ALLOWED = {
    "model": set(),
    "data": set(),
    "measure": {"model", "data"},
    "method": {"model", "data", "measure"},
    "apps": {"model", "data", "measure", "method"},
}
MAX_LINES = 420  # "about 400"


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in sorted(PKG.rglob("*.py"))}


def imports(name: str, path: Path, heads_only: bool = False) -> list[tuple[str, int, bool]]:
    """(imported mosslib module, line, at the module head) for each internal import of a module."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    head = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("mosslib"):
                continue
            for alias in node.names:  # "from . import fast": the module mosslib.model.fast
                sub = f"{target}.{alias.name}"
                out.append((sub if sub in modules() else target, node.lineno, id(node) in head))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in head) for a in node.names if a.name.startswith("mosslib")]
    return out


def role(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROLES else None


def test_every_module_sits_in_a_role_folder():
    # mosslib.cli: the entry point that console scripts of older installs name (a one-line shim)
    loose = [m for m in modules() if role(m) is None and m not in ("mosslib", "mosslib.__main__", "mosslib.cli")]
    assert loose == []


def test_tests_mirror_the_role_folders():
    """tests/<role>/ holds the tests of mosslib/<role>/; only repository-wide checks sit at the top."""
    tests = Path(__file__).resolve().parent
    folders = {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))}
    assert folders <= set(ROLES) | {"e2e"}, folders - set(ROLES)
    top = sorted(p.name for p in tests.glob("test_*.py"))
    assert top == ["test_committed_results.py", "test_layout.py"], top


def test_no_module_imports_what_it_neither_uses_nor_exports():
    """A name imported from a sibling module is used, or listed in ``__all__`` (a deliberate entry
    point); importing names only so that old callers find them here is accretion."""
    stray = []
    for name, path in modules().items():
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        exported = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
                exported = {e.value for e in node.value.elts if isinstance(e, ast.Constant)}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level:
                stray += [f"{name}: {a.asname or a.name}" for a in node.names
                          if (a.asname or a.name) not in used | exported and a.name != "*"]
    assert stray == []


def test_no_module_imports_another_modules_private_names():
    """What a module shares has a public name; a leading underscore means "this module only"."""
    private = []
    for name, path in modules().items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("mosslib")):
                private += [f"{name}: {a.name}" for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert private == []


def test_dependencies_point_one_way():
    bad = []
    for name, path in modules().items():
        mine = role(name)
        for target, line, _ in imports(name, path):
            theirs = role(target)
            if mine and theirs and theirs != mine and theirs not in ALLOWED[mine]:
                bad.append(f"{name}:{line} imports {target}")
    assert bad == []


def test_no_import_cycles():
    mods = modules()
    graph = {m: {t for t, _, _ in imports(m, p) if t in mods and t != m} for m, p in mods.items()}
    cycles = []

    def visit(node, stack, seen):
        for nxt in graph[node]:
            if nxt in stack:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in seen:
                seen.add(nxt)
                visit(nxt, stack + [nxt], seen)

    for m in graph:
        visit(m, [m], {m})
    assert cycles == []


def test_internal_imports_sit_at_module_heads():
    """A module's head says what it depends on; the one exception is the package's lazy export."""
    inner = [f"{name}:{line} {target}" for name, path in modules().items()
             for target, line, at_head in imports(name, path) if not at_head and name != "mosslib"]
    assert inner == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_are_small(name):
    n = len(modules()[name].read_text().splitlines())
    assert n <= MAX_LINES, f"{name}: {n} lines"


def test_no_reference_outside_the_repository():
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        assert "NOTES.md" not in text and "../shared/paper" not in text, path


MEASURED = re.compile(r"\d+(\.\d+)?\s*(dB|ms|GFLOP/s|images/s)\b|\b\d+\.\d+x\b|\d+(\.\d+)?\s*%\s*(faster|slower)")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_texts_state_no_measured_numbers(command):
    """A measured number goes stale in --help (``derain --help`` once stated an ensemble gain that
    the README contradicted): results and docs carry them, with the command that re-makes them."""
    text = build_parser(command).format_help()
    assert not MEASURED.search(text), MEASURED.search(text).group(0)


def test_a_lazy_import_says_why():
    """Every import inside a function is a heavy or optional dependency, with a comment saying so."""
    silent = []
    for name, path in modules().items():
        if name == "mosslib":  # the package's lazy export of derain is the point of its __getattr__
            continue
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        head = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in head:
                if "#" not in lines[node.lineno - 1]:
                    silent.append(f"{name}:{node.lineno} {lines[node.lineno - 1].strip()}")
    assert silent == []
