"""The soak's closing summary: what ran, what was injected, what the invariants found."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from tests.chaos.invariants import INVARIANTS
from tests.chaos.snapshot import Snapshot

EXAMPLES = 5


def _counts(items: Iterable[str]) -> str:
    counted = Counter(items)
    return ", ".join(f"{k} {v}" for k, v in sorted(counted.items())) or "none"


def render_summary(
    *,
    seed: int,
    config: Any,
    snap: Snapshot,
    violations: Mapping[str, list[str]],
    faults: Mapping[str, int],
    skipped: Mapping[str, int],
    unexpected: list[tuple[str, int | None, str]],
    orphans: int,
    reports: Mapping[str, Any],
    failed_runs: list[str],
    notes: list[str],
) -> str:
    published = Counter(snap.published.values())
    lines = [
        "",
        "=" * 78,
        f"chaos soak summary: seed {seed}, {config.minutes:g} min of faults, "
        f"{config.workers} workers, {len(config.instruments)} instruments",
        "=" * 78,
        f"signals: {len(snap.published)} published by the feed (buy {published['buy']}, "
        f"sell {published['sell']}), {len(snap.undelivered)} not delivered to the broker; "
        f"{len(snap.signals)} recorded in the ledger",
    ]
    for kind in ("buy", "sell"):
        outcomes = [
            f"{s['outcome']}" + (f"/{s['reason']}" if s["reason"] else "")
            for s in snap.signals
            if s["kind"] == kind
        ]
        lines.append(f"  {kind} outcomes: {_counts(outcomes)}")
    ledger_orders = [f"{o['side']} {o['state']}" for o in snap.orders]
    sim_orders = [f"{o.side} {o.state}" for o in snap.sim_orders]
    distinct = len({r["cl_ord_id"] for r in snap.requests})
    lines += [
        f"orders: ledger {len(snap.orders)} ({_counts(ledger_orders)})",
        f"        simulator {len(snap.sim_orders)} ({_counts(sim_orders)})",
        f"        {len(snap.requests)} placement requests for {distinct} clOrdIds",
        f"lots: {len(snap.lots)} ({_counts(str(lot['state']) for lot in snap.lots)})",
        f"faults injected: {sum(faults.values())} ({_counts(_expand(faults))})",
    ]
    if skipped:
        lines.append(f"  not injected (nothing to hit): {_counts(_expand(skipped))}")
    if unexpected:
        exits = [f"{name} (exit {code})" for name, code, _ in unexpected]
        lines.append(f"processes that exited on their own (restarted): {_counts(exits)}")
        name, code, tail = unexpected[0]
        lines.append(f"  first: {name} exit {code}; its log ends:")
        lines += [f"    {line}" for line in tail.splitlines()[-8:]]
    lines.append(f"messages requeued after kill -9 (visibility timeout fast-forward): {orphans}")
    lines.append(f"reconciliation runs that failed (beat, worker start, final): {len(failed_runs)}")
    for error, n in Counter(e[:160] for e in failed_runs).most_common(3):
        lines.append(f"  {n}x {error}")
    for name, report in reports.items():
        lines.append(f"final {name}: {report}")
    lines += [f"note: {note}" for note in notes]
    total = sum(len(v) for v in violations.values())
    lines.append(f"violations: {total}")
    for key, title in INVARIANTS.items():
        found = violations.get(key, [])
        lines.append(f"  ({key}) {title}: {len(found)}")
        lines += [f"      - {text}" for text in found[:EXAMPLES]]
        if len(found) > EXAMPLES:
            lines.append(f"      ... and {len(found) - EXAMPLES} more")
    lines.append("=" * 78)
    return "\n".join(lines)


def _expand(counts: Mapping[str, int]) -> list[str]:
    return [name for name, n in counts.items() for _ in range(n)]
