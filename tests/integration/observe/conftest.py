"""Fixtures of the observability suite (the engine itself is in ``observe_engine``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from observe_engine import Engine, running_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with running_engine(tmp_path) as running:
        yield running
