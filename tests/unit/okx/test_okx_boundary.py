"""The OKX package sits at the edge: it imports inward only, never the engine around it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "worker" / "exchange" / "okx"
# What the adapter and the protocol may use of the rest of the project.
ALLOWED = ("worker.exchange.okx", "worker.exchange.port", "worker.domain", "worker.logs")
ALLOWED_LEAVES = ("worker.task_names", "beat_schedule")  # constants only
FIRST_PARTY = ("worker", "feed", "simulator", "beat_schedule", "ops", "tests")


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_every_module_imports_inward_only(path: Path) -> None:
    first_party = {m for m in imports(path) if within(m, FIRST_PARTY)}
    outside = {m for m in first_party if not within(m, ALLOWED + ALLOWED_LEAVES)}
    assert outside == set(), f"{path.name} imports {sorted(outside)}"


def test_importing_the_package_builds_no_engine() -> None:
    code = (
        "import sys\n"
        "import worker.exchange.okx.adapter, worker.exchange.okx.private_stream\n"
        "heavy = ('worker.app', 'worker.tasks', 'worker.services', 'worker.ledger',\n"
        "         'worker.settings', 'worker.metrics', 'celery', 'sqlalchemy')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
