"""The generator's event options: rates from the CLI, and faster events with the same draws."""

from __future__ import annotations

from decimal import Decimal

import pytest

from simulator.__main__ import parse_args
from simulator.generator import Generator
from simulator.instruments import make_instrument


def test_cli_sets_event_rates_and_time_scale() -> None:
    config = parse_args(["--shock-rate", "40", "--dump-rate", "30", "--event-time-scale", "0.05"])
    assert (config.shock_rate_per_hour, config.dump_rate_per_hour) == (40.0, 30.0)
    assert config.event_time_scale == 0.05
    default = parse_args([])
    assert (default.shock_rate_per_hour, default.dump_rate_per_hour) == (0.05, 0.02)
    assert default.event_time_scale == 1.0


@pytest.mark.parametrize(
    "argv", [["--shock-rate", "-1"], ["--dump-rate", "-1"], ["--event-time-scale", "0"]]
)
def test_cli_refuses_bad_event_options(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_time_scale_shortens_events_and_keeps_the_schedule() -> None:
    insts = [make_instrument("BTC-USDT")]
    normal = Generator(insts, 5, Decimal(5000), shock_rate_per_hour=3600, dump_rate_per_hour=0)
    fast = Generator(
        insts, 5, Decimal(5000), shock_rate_per_hour=3600, dump_rate_per_hour=0,
        event_time_scale=0.1,
    )  # fmt: skip
    normal.step(1.0)
    fast.step(1.0)
    a, b = normal.shocks["BTC-USDT"], fast.shocks["BTC-USDT"]
    assert a.depth == b.depth
    assert b.fall == pytest.approx(a.fall * 0.1)
    assert b.hold == pytest.approx(a.hold * 0.1)
    assert b.recover == pytest.approx(a.recover * 0.1)
