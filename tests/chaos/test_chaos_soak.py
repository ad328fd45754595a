"""The chaos soak as an opt-in test (``--run-slow``): no invariant may break.

``CHAOS_MINUTES`` (default 6) and ``CHAOS_SEED`` (default: random, printed) steer it; the whole
run, start-up and settle included, stays within ten minutes. Longer runs:
``benchmarks/chaos_soak.py --minutes N --seed S``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.harness import SoakConfig, run_soak


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_chaos_soak_breaks_no_invariant(tmp_path: Path) -> None:
    seed = os.environ.get("CHAOS_SEED")
    config = SoakConfig(
        minutes=float(os.environ.get("CHAOS_MINUTES", "6")),
        seed=int(seed) if seed else None,
        workdir=tmp_path,
    )
    result = run_soak(config)
    assert result.ok, result.summary
