"""Fixtures of the end-to-end suite (the engine itself is in ``e2e_engine``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_engine import Engine, running_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with running_engine(tmp_path) as running:
        yield running
