"""CPU seconds used so far by each part of a running engine, read from ``/proc`` (Linux).

Processes started with ``start_new_session=True`` are counted under their own name, and their
children (a prefork worker's pool processes) apart; PostgreSQL under the backends serving one
database and its shared background processes (the WAL writer flushes commits for everyone);
Redis under the server listening on one port. Processes that exit between two readings take
their CPU with them, so read around a phase in which the engine's processes keep running.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
# Shared by every database of the server; commits wait for the WAL writer and flushes.
PG_BACKGROUND = ("walwriter", "checkpointer", "background writer", "wal writer")


def census(sessions: dict[int, str], database: str, redis_port: int) -> Counter[str]:
    """CPU seconds per part: ``sessions`` maps a session leader's pid to its part's name."""
    own = os.getpid()
    totals: Counter[str] = Counter()
    for pid, session, cpu, comm, cmdline in _processes():
        if session in sessions:
            # A prefork worker's consumer (the session's leader) apart from its pool processes.
            totals[sessions[session] + ("" if pid == session else " (pool processes)")] += cpu
        elif pid == own:
            totals["bench (sends no-ops)"] += cpu
        elif comm.startswith("postgres"):
            if f" {database} " in f" {cmdline} ":
                totals["postgresql (its backends)"] += cpu
            elif any(word in cmdline for word in PG_BACKGROUND):
                totals["postgresql (WAL writer etc.)"] += cpu
        elif comm.startswith("redis-server") and f":{redis_port}" in cmdline:
            totals["redis"] += cpu
    return totals


def _processes() -> Iterable[tuple[int, int, float, str, str]]:
    """(pid, session, CPU seconds, command name, command line) of every process."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue  # gone meanwhile
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # After the command: state, ppid, pgrp, session, ..., utime (12th), stime (13th).
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        yield int(stat.parent.name), int(fields[3]), cpu, comm, cmdline.strip()


def per_item_ms(before: Counter[str], after: Counter[str], items: int) -> dict[str, float]:
    """CPU milliseconds per item between two readings, per part, largest first."""
    spent = {k: (after[k] - before[k]) * 1000 / items for k in after}
    return dict(sorted(spent.items(), key=lambda kv: -kv[1]))
