"""Re-export the unit tests' recorded OKX answers (one copy of the fixture loader)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parents[2] / "unit" / "okx" / "okx_fixtures.py"
_spec = importlib.util.spec_from_file_location("okx_fixtures", _path)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

INSTRUMENTS_BODY = _module.INSTRUMENTS_BODY
ORDERS_PUSH = _module.ORDERS_PUSH
LIVE_PUSH_ITEM = _module.LIVE_PUSH_ITEM
recorded = _module.recorded
