"""Print the mutation score per module from the results of the last ``mutmut run``.

Reads ``mutants/**/*.py.meta`` (mutmut 3) and the equivalent-mutants file, and prints one row per
mutated module: killed, survived, equivalent, and the score, which is the share of the
non-equivalent mutants that the unit tests killed. Then it lists what survived and any entry of
the equivalent-mutants file that no longer matches a mutant. Run by ``scripts/mutate``.

An entry of the equivalent-mutants file is ``NAME :: MUTATED LINE :: REASON``. ``NAME`` is the
mutant's name (``module.x_function__mutmut_N``); ``MUTATED LINE`` is the line the mutant
changes, as ``mutmut show NAME`` prints it after ``+``. The line is checked, so a renumbered
mutant (its function changed) is never subtracted by mistake: if another mutant of the same
function now makes that change, this script names it; otherwise the entry is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mutmut.mutation.diff_apply import get_diff_for_mutant

TARGET = 95.0
EQUIVALENT_FILE = Path("tests/unit/equivalent_mutants.txt")

# mutmut 3 exit codes (mutmut.stats.status_by_exit_code): a failing test run or a timeout kills.
KILLED = {1, 3, 24, -24, 36, 37, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}
NOT_RUN = {None, 2}


@dataclass(frozen=True)
class Equivalent:
    name: str
    line: str
    reason: str
    lineno: int


@dataclass
class Module:
    path: str
    results: dict[str, int | None]
    killed: int = 0
    survived: list[str] = field(default_factory=list)
    equivalent: int = 0
    not_run: int = 0

    @property
    def score(self) -> float:
        relevant = self.killed + len(self.survived)
        return 100.0 * self.killed / relevant if relevant else 100.0


def mutated_line(name: str, path: str) -> str:
    """The line(s) that mutant ``name`` adds, as ``mutmut show`` prints them after ``+``."""
    diff = get_diff_for_mutant(name, path=path).splitlines()[2:]
    return " / ".join(line[1:].strip() for line in diff if line.startswith("+"))


def read_equivalents(path: Path) -> list[Equivalent]:
    out = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in raw.split(" :: ")]
        if len(parts) != 3 or not all(parts):
            sys.exit(f"{path}:{lineno}: expected 'NAME :: MUTATED LINE :: REASON', got {raw!r}")
        out.append(Equivalent(parts[0], parts[1], parts[2], lineno))
    return out


def read_modules(root: Path) -> dict[str, Module]:
    modules = {}
    for meta in sorted(root.rglob("*.py.meta")):
        results = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        if results:
            path = meta.relative_to(root).as_posix().removesuffix(".meta")
            modules[path] = Module(path, results)
    return modules


def resolve(
    entries: list[Equivalent], modules: dict[str, Module], problems: list[str]
) -> dict[str, Equivalent]:
    """Map each entry to the mutant it describes now, checking the mutated line."""
    where = {name: m for m in modules.values() for name in m.results}
    resolved: dict[str, Equivalent] = {}
    for e in entries:
        module = where.get(e.name)
        if module is not None and mutated_line(e.name, module.path) == e.line:
            resolved[e.name] = e
            continue
        function = e.name.rpartition("__mutmut_")[0]
        same = [
            name
            for m in modules.values()
            for name in m.results
            if name.rpartition("__mutmut_")[0] == function and mutated_line(name, m.path) == e.line
        ]
        if len(same) == 1:
            problems.append(f"line {e.lineno}: {e.name} is now {same[0]}: update the entry")
            resolved[same[0]] = e
        else:
            problems.append(f"line {e.lineno}: stale, no mutant makes that change: {e.name}")
    return resolved


def classify(
    modules: dict[str, Module], equivalents: dict[str, Equivalent], problems: list[str]
) -> None:
    """Count each module's mutants as killed, not run, equivalent or survived."""
    for m in modules.values():
        for name, code in m.results.items():
            if code in KILLED:
                m.killed += 1
                if name in equivalents:
                    problems.append(f"{name} was killed, so it is not equivalent: remove it")
            elif code in NOT_RUN:
                m.not_run += 1
            elif name in equivalents:
                m.equivalent += 1
            else:
                m.survived.append(name)


def total_of(modules: dict[str, Module]) -> Module:
    total = Module("total", {k: v for m in modules.values() for k, v in m.results.items()})
    total.killed = sum(m.killed for m in modules.values())
    total.survived = [s for m in modules.values() for s in m.survived]
    total.equivalent = sum(m.equivalent for m in modules.values())
    return total


def print_table(modules: dict[str, Module], total: Module) -> None:
    header = ("module", "mutants", "killed", "survived", "equivalent", "score")
    rows = [
        (m.path, len(m.results), m.killed, len(m.survived), m.equivalent, f"{m.score:.1f} %")
        for m in [*modules.values(), total]
    ]
    width = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        if row is rows[-1]:
            print("-" * (sum(width) + 2 * (len(width) - 1)))
        cells = [str(cell).rjust(w) for cell, w in zip(row, width, strict=True)]
        cells[0] = str(row[0]).ljust(width[0])
        print("  ".join(cells))
    print(f"score = killed / (mutants - equivalent); target {TARGET:.0f} % in every module")


def print_findings(modules: dict[str, Module], total: Module) -> None:
    """The modules below the target, the survivors, and whether the run was complete."""
    below = [m.path for m in modules.values() if m.score < TARGET]
    if below:
        print(f"\nbelow the target: {', '.join(below)}")
    if total.survived:
        print("\nsurvived (see one with: .venv/bin/mutmut show NAME):")
        for m in modules.values():
            for name in m.survived:
                status = "no test calls it" if m.results[name] in NO_TESTS else "survived"
                print(f"  {name}  [{status}]  {mutated_line(name, m.path)}")
    not_run = sum(m.not_run for m in modules.values())
    if not_run:
        print(f"\n{not_run} mutants were not run (interrupted?): the table is incomplete")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--equivalent", type=Path, default=EQUIVALENT_FILE)
    args = parser.parse_args()

    modules = read_modules(args.mutants)
    if not modules:
        print("no mutation results: run scripts/mutate first", file=sys.stderr)
        return 1
    problems: list[str] = []
    entries = read_equivalents(args.equivalent)
    equivalents = resolve(entries, modules, problems)
    classify(modules, equivalents, problems)
    total = total_of(modules)
    print_table(modules, total)
    print_findings(modules, total)
    if problems:
        print(f"\n{args.equivalent}:")
        for p in problems:
            print(f"  {p}")
    print(f"\n{args.equivalent}: {len(entries)} equivalent mutants, {len(equivalents)} matched")
    return 0


if __name__ == "__main__":
    sys.exit(main())
