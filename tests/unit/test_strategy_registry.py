"""Every registered strategy is known the same way everywhere: a new one that is missing from
the config, the feed's wiring or the operator commands fails here, not in production."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from feed import approach
from feed.engine import Engine
from feed.strategies.batch import BatchState
from feed.strategies.wiring import EVALUATORS, enabled_evaluators, needs_day_fields
from worker.domain.buckets import bucket_at
from worker.domain.ids import buy_cl_ord_id, parse_cl_ord_id, sell_cl_ord_id, signal_id_for
from worker.domain.strategies import (
    BY_CODE,
    BY_ID,
    REGISTRY,
    STABLE,
    STRATEGIES,
    Strategy,
    display_name,
)
from worker.signals import BuySignal
from worker.strategy_config import StrategyConfig, StrategyParams, parse_strategy_config

OKX_CL_ORD_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


def only(strategy: str) -> StrategyConfig:
    return parse_strategy_config({s: {"enabled": False} for s in STRATEGIES if s != strategy})


def test_ids_codes_and_names_are_unique() -> None:
    assert len(REGISTRY) == 4
    assert len({s.id for s in REGISTRY}) == len(REGISTRY)
    assert len({s.code for s in REGISTRY}) == len(REGISTRY)
    assert len({s.name for s in REGISTRY}) == len(REGISTRY)
    assert STRATEGIES == tuple(s.id for s in REGISTRY)
    assert all(BY_ID[s.id] is s and BY_CODE[s.code] is s for s in REGISTRY)


@pytest.mark.parametrize("strategy", REGISTRY, ids=lambda s: s.id)
def test_cl_ord_ids_are_okx_safe_and_name_the_strategy(strategy: Strategy) -> None:
    signal_id = signal_id_for(strategy.id, "BTC-USDT", "2026112908")
    buy = buy_cl_ord_id(strategy.id, signal_id)
    sell = sell_cl_ord_id(strategy.id, 7, 1)
    for cl_ord_id in (buy, sell):
        assert OKX_CL_ORD_ID.match(cl_ord_id) and len(cl_ord_id) == 29
        assert cl_ord_id[2:4] == strategy.code
    assert parse_cl_ord_id(buy) == (strategy.id, "buy")
    assert parse_cl_ord_id(sell) == (strategy.id, "sell")


def test_the_config_has_one_table_per_strategy_in_registry_order() -> None:
    assert tuple(StrategyConfig.model_fields) == STRATEGIES
    config = StrategyConfig()
    assert all(isinstance(config.params(s), StrategyParams) for s in STRATEGIES)
    assert config.enabled() == list(STRATEGIES)
    assert only(STABLE.id).enabled() == [STABLE.id]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_feed_wires_each_strategy_to_its_own_evaluator(strategy: str) -> None:
    config = only(strategy)
    [evaluator] = enabled_evaluators(config, BatchState())
    assert evaluator.params is config.params(strategy)
    assert sys.modules[type(evaluator).__module__].STRATEGY == strategy
    engine = Engine([], config, lambda _: None)
    assert [type(e) for e in engine.evaluators] == [type(evaluator)]
    assert engine.day_fields == needs_day_fields(config) == (strategy == STABLE.id)


def test_the_feed_wires_every_strategy_and_nothing_else() -> None:
    assert tuple(EVALUATORS) == STRATEGIES
    modules = [type(e).__module__ for e in enabled_evaluators(StrategyConfig(), BatchState())]
    assert [sys.modules[m].STRATEGY for m in modules] == list(STRATEGIES)


def test_the_closest_approaches_know_every_strategy() -> None:
    known = (approach.HOURLY, approach.GAP, approach.STABLE, approach.BATCH)
    assert sorted(known) == sorted(STRATEGIES)


@pytest.mark.parametrize("strategy", REGISTRY, ids=lambda s: s.id)
def test_signals_buckets_and_operator_commands_know_each_strategy(strategy: Strategy) -> None:
    at = datetime(2026, 11, 29, 8, 30, tzinfo=UTC)
    bucket = bucket_at(strategy.id, at, StrategyConfig().original_gap.gap_window_seconds)
    assert bucket.start <= at < bucket.end
    signal = BuySignal(
        v=1,
        kind="buy",
        signal_id=bucket.signal_id("BTC-USDT"),
        strategy=strategy.id,
        inst_id="BTC-USDT",
        px=Decimal("1"),
        quote_sz=Decimal("10"),
        created_at=1,
    )
    assert signal.strategy == strategy.id
    assert display_name(strategy.id) == strategy.name


def test_an_unknown_strategy_is_shown_by_its_id() -> None:
    assert display_name("nope") == "nope"


@pytest.mark.parametrize(
    ("strategy_id", "code"),
    [("", "ab"), ("Hourly", "ab"), ("a-b", "ab"), ("ok", "a"), ("ok", "abc"), ("ok", "XX")],
)
def test_a_strategy_that_would_break_ids_is_refused(strategy_id: str, code: str) -> None:
    with pytest.raises(ValueError, match="strategy"):
        Strategy(strategy_id, code, "Name")


def test_ids_and_codes_may_use_digits_and_underscores() -> None:
    assert Strategy("dip_2", "d2", "Dip").code == "d2"
    every = "abcdefghijklmnopqrstuvwxyz0123456789_"
    assert Strategy(every, "z9", "Every").id == every
