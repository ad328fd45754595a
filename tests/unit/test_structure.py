"""The shape of the code, checked from its source: imports that build nothing, layers that
point one way, no import cycles.

The import graph is read with ``ast`` from every module of ``worker/`` and ``feed/``, with
every ``import`` statement counted wherever it stands (a function-local import is a coupling
too: it only hides a cycle), except those under ``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("worker", "feed")
OKX_ADAPTER = "worker.exchange.okx"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # alembic's scripts: loaded by alembic, never imported
            found[_module_name(path)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _imports_in(child))
            continue
        yield from _imports_in(node)


def _imports_in(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    elif not (isinstance(node, ast.If) and _is_type_checking(node)):
        yield from _imports(node)


def _targets(
    module: str, path: Path, node: ast.Import | ast.ImportFrom, known: dict[str, Path]
) -> Iterator[str]:
    """The modules an import statement loads (the deepest known name of each)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in known else base


def _graph() -> dict[str, set[str]]:
    known = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        edges: set[str] = set()
        for node in _imports(tree):
            for target in _targets(module, path, node, known):
                if target.split(".")[0] != "mutmut":  # scripts/mutate's trampolines
                    edges.add(target)
        graph[module] = edges
    return graph


def _internal(target: str, known: dict[str, set[str]]) -> str | None:
    """The module of ours an import names, or None for a library's."""
    while target:
        if target in known:
            return target
        target = target.rpartition(".")[0]
    return None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _internal_graph() -> dict[str, set[str]]:
    raw = _graph()
    graph: dict[str, set[str]] = {}
    for module, targets in raw.items():
        edges = {_internal(t, raw) for t in targets}
        # A package's own __init__ runs before any of its submodules: not an edge of theirs.
        graph[module] = {e for e in edges if e is not None and e != module}
    return graph


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    stdlib = sys.stdlib_module_names
    bad = []
    for module, targets in _graph().items():
        if not module.startswith("worker.domain"):
            continue
        for target in targets:
            top = target.split(".")[0]
            if target.startswith("worker.domain") or top in stdlib or top == "__future__":
                continue
            bad.append(f"{module} imports {target}")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles_between_modules_of_worker_and_feed() -> None:
    graph = _internal_graph()
    # The package ``worker`` resolves ``worker.app`` lazily for ``celery -A worker``: that
    # edge is an attribute of the package, not a dependency of anything inside it.
    graph["worker"] = set()
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_services_and_the_ledger_do_not_import_the_okx_adapter() -> None:
    bad = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module.startswith(("worker.services", "worker.ledger"))
        for target in targets
        if target == OKX_ADAPTER or target.startswith(OKX_ADAPTER + ".")
    ]
    assert not bad, "\n".join(sorted(bad))


def test_the_checker_sees_a_cycle_and_a_function_local_import() -> None:
    """The walker itself: a cycle hidden behind a function-local import is found."""
    tree = ast.parse("def f():\n    from worker.b import x\n")
    names = [n.module for n in _imports(tree) if isinstance(n, ast.ImportFrom)]
    assert names == ["worker.b"]
    guarded = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\n")
    assert [n for n in _imports(guarded) if isinstance(n, ast.Import)] == []
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    "modules",
    ["worker.domain.money, worker.signals", "worker, worker.task_names, worker.settings"],
)
def test_importing_worker_modules_builds_nothing(tmp_path: Path, modules: str) -> None:
    """With an environment no process could start on, importing reads none of it and creates
    no folder."""
    env = {
        **os.environ,
        "LIMITFLOW_HOME": str(tmp_path / "home"),
        "STRATEGY_CONFIG": str(tmp_path / "missing.toml"),
        "CELERY_BROKER_URL": "not a url",
        "MAX_OPEN_POSITIONS": "minus one",
        "OKX_DEMO": "perhaps",
    }
    run = subprocess.run(
        [sys.executable, "-c", f"import {modules}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert list(tmp_path.iterdir()) == []
