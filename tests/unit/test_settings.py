from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from worker.domain.errors import ConfigError
from worker.settings import load_settings
from worker.strategy_config import load_strategy_config, parse_strategy_config


def test_defaults_point_at_embedded_stores_and_the_simulator(tmp_path: Path) -> None:
    s = load_settings({"LIMITFLOW_HOME": str(tmp_path)})
    assert s.database_url.startswith("sqlite:///")
    assert s.broker_url == "filesystem://"
    assert s.OKX_REST_URL.startswith("http://127.0.0.1")
    assert s.OKX_DEMO is True
    assert s.MEMORY_SYNC_INTERVAL_SECONDS == 300 and s.PENDING_TIMEOUT_SECONDS == 60
    assert s.BUY_GUARD_WINDOW_SECONDS == 7200 and s.SIGNAL_TTL_SECONDS == 10
    assert s.MAX_OPEN_POSITIONS == 20 and s.MAX_ORDER_USDT == Decimal(100)
    assert s.FEE_RATE_BOUND == Decimal("0.001")  # OKX's regular spot taker rate


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"MEMORY_SYNC_INTERVAL_SECONDS": "-1"}, "MEMORY_SYNC_INTERVAL_SECONDS"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://x/y"}, "postgresql"),
        ({"INSTRUMENTS": "BTC/USDT"}, "INSTRUMENTS"),
        ({"INSTRUMENTS": "BTC-USDT,ÄB-USDT"}, "'ÄB-USDT' is not an instrument id like BTC-USDT"),
        ({"OKX_DEMO": "maybe"}, "OKX_DEMO"),
        ({"FEE_RATE_BOUND": "-0.001"}, "FEE_RATE_BOUND"),
        ({"FEE_RATE_BOUND": "0.1"}, "FEE_RATE_BOUND"),
        ({"FEE_RATE_BOUND": "one tenth"}, "FEE_RATE_BOUND"),
    ],
)
def test_bad_values_give_one_clear_sentence(values: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        load_settings(values)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("rate", ["0", "0.0008", "0.0999"])
def test_fee_rate_bound_from_zero_to_below_ten_percent(rate: str) -> None:
    assert load_settings({"FEE_RATE_BOUND": rate}).FEE_RATE_BOUND == Decimal(rate)


def test_secret_values_are_never_echoed() -> None:
    s = load_settings({"OKX_API_SECRET": "topsecret-value"})
    assert "topsecret-value" not in repr(s) and "topsecret-value" not in str(s.model_dump())


def test_strategy_config_overrides_and_disables(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        "[hourly_limit_ws]\ndrop_pct = 0.04\norder_usdt = 20\n\n[original_gap]\nenabled = false\n"
    )
    cfg = load_strategy_config(str(path))
    assert cfg.hourly_limit_ws.drop_pct == Decimal("0.04")
    assert cfg.hourly_limit_ws.order_usdt == Decimal("20")
    assert cfg.original_gap.enabled is False
    assert cfg.batch_buy_ws.min_count == 5


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[moon_strategy]\nenabled = true\n", "unknown strategy"),
        ("[hourly_limit_ws]\ndrop_pcnt = 0.1\n", "unknown key"),
        ("[hourly_limit_ws]\ndrop_pct = -0.1\n", "drop_pct"),
        ("[hourly_limit_ws\n", "not valid TOML"),
    ],
)
def test_bad_strategy_files(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_settings({"STRATEGY_CONFIG": str(path)})


def test_a_strategy_file_with_two_problems_is_one_sentence_naming_both() -> None:
    data = {"original_gap": {"gap_pct": Decimal("2")}, "batch_buy_ws": {"min_cnt": 3}}
    with pytest.raises(ConfigError) as info:
        parse_strategy_config(data, "STRATEGY_CONFIG s.toml")
    assert str(info.value) == (
        "STRATEGY_CONFIG s.toml: original_gap.gap_pct: Input should be less than 1; "
        "unknown key [batch_buy_ws.min_cnt]"
    )


def test_missing_strategy_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({"STRATEGY_CONFIG": "/nonexistent/strategies.toml"})
