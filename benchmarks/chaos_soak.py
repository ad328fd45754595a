"""Chaos soak: the whole engine under random faults, then the ledger checked against the
simulator's own books.

Run: ``.venv/bin/python benchmarks/chaos_soak.py --minutes 20 --seed 7``

Starts its own ``redis-server`` and PostgreSQL cluster (never the shared ones: it restarts
them), the simulator, ``--workers`` Celery workers, beat, the orders stream and the feed; injects
faults for ``--minutes`` (kill -9 of workers and of the orders stream, Redis and PostgreSQL
restarts, late placements, accept-then-timeout, 5xx and 429 bursts, suspended instruments,
dropped and duplicated order pushes); settles; runs one final reconciliation; checks the
invariants and prints a summary. The same seed injects the same faults at the same moments on
the same market (the engine's own timing still varies). Exit code 0 when no invariant was
violated and the final reconciliation succeeded, 1 otherwise. See ``tests/chaos/harness.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.config import DEFAULT_INSTRUMENTS  # noqa: E402
from tests.chaos.harness import SoakConfig, run_soak  # noqa: E402


def parse_args(argv: list[str] | None = None) -> SoakConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--minutes", type=float, default=6.0, help="minutes of faults (%(default)s)")
    add("--seed", type=int, default=None, help="fault and market seed (default: random, printed)")
    add("--workers", type=int, default=3, help="celery worker processes (%(default)s)")
    add("--gap", type=float, default=6.0, help="mean seconds between faults (%(default)s)")
    add("--instruments", default=",".join(DEFAULT_INSTRUMENTS), help="comma-separated")
    add("--workdir", type=Path, default=None, help="logs and Redis files (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.workers < 1 or args.gap <= 0:
        parser.error("--minutes and --gap must be > 0, --workers >= 1")
    return SoakConfig(
        minutes=args.minutes,
        seed=args.seed,
        workers=args.workers,
        instruments=tuple(i.strip().upper() for i in args.instruments.split(",") if i.strip()),
        mean_gap_seconds=args.gap,
        workdir=args.workdir,
    )


def main(argv: list[str] | None = None) -> int:
    result = run_soak(parse_args(argv), say=lambda line: print(line, flush=True))
    print(f"chaos soak: seed {result.seed}; logs in {result.workdir / 'logs'}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
