"""The chaos soak as an opt-in test (``--run-slow``): no invariant may break.

``CHAOS_MINUTES`` (default 5) and ``CHAOS_SEED`` (default: random, printed) steer it; the whole
run, start-up and settle included, stays within ten minutes. Logs, ``summary.txt`` and
``snapshot.json`` go to a fresh ``/tmp/limitflow-chaos-*`` folder (printed; pytest's own
temporary folders are rotated away too soon for a post-mortem), or to ``CHAOS_WORKDIR``.
Longer runs: ``benchmarks/chaos_soak.py --minutes N --seed S``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.harness import SoakConfig, run_soak


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_chaos_soak_breaks_no_invariant() -> None:
    seed = os.environ.get("CHAOS_SEED")
    workdir = os.environ.get("CHAOS_WORKDIR")
    config = SoakConfig(
        minutes=float(os.environ.get("CHAOS_MINUTES", "5")),
        seed=int(seed) if seed else None,
        workdir=Path(workdir) if workdir else None,
    )
    result = run_soak(config)
    assert result.ok, result.summary
