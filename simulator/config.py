"""The simulator's options (CLI flags and ``start_simulator`` keyword arguments)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from worker.settings import SIM_API_KEY, SIM_API_PASSPHRASE, SIM_API_SECRET

DEFAULT_INSTRUMENTS = (
    "BTC-USDT",
    "ETH-USDT",
    "SOL-USDT",
    "XRP-USDT",
    "DOGE-USDT",
    "LTC-USDT",
    "ADA-USDT",
    "LINK-USDT",
    "AVAX-USDT",
    "DOT-USDT",
)


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 18080
    seed: int = 1
    replay: Path | None = None
    # Simulated seconds per real second; 0 = as fast as possible (replay) / clock stands still.
    speed: float = 1.0
    # Start with the clock paused: the market moves only through /_sim/clock and /_sim/price.
    paused: bool = False
    start_ms: int | None = None
    instruments: tuple[str, ...] = DEFAULT_INSTRUMENTS
    # Per-instrument overrides "INST:tickSz:lotSz:minSz" (e.g. to match a test's fixtures).
    instrument_rules: tuple[str, ...] = ()
    api_key: str = SIM_API_KEY
    api_secret: str = SIM_API_SECRET
    passphrase: str = SIM_API_PASSPHRASE
    # Account and matching.
    start_usdt: Decimal = Decimal(10000)
    fee_rate: Decimal = Decimal("0.001")
    # Quote amount offered on each side at every price step (big orders fill in parts).
    step_liquidity_usdt: Decimal = Decimal(5000)
    # Canceled orders that never filled drop out of history after this much simulated time.
    history_retention_seconds: float = 7200.0
    # Market generator.
    step_seconds: float = 1.0
    warmup_hours: int = 24
    shock_rate_per_hour: float = 0.05
    dump_rate_per_hour: float = 0.02
    # Multiplies the duration of drops and dumps (fall, hold, recovery); 0.1 = ten times faster.
    event_time_scale: float = 1.0
    # Websockets.
    ws_idle_timeout: float = 30.0
    ticker_interval_ms: int = 100
    auth_window_seconds: float = 30.0

    @classmethod
    def from_options(cls, **opts: object) -> SimConfig:
        """Build from keyword options, converting strings and floats to the right types."""
        config = cls()
        for name, value in opts.items():
            if not hasattr(config, name):
                raise TypeError(f"unknown simulator option {name!r}")
            current = getattr(config, name)
            if isinstance(current, Decimal) and not isinstance(value, Decimal):
                try:
                    value = Decimal(str(value))
                except ArithmeticError:
                    raise ValueError(f"{name} must be a number, got {value!r}") from None
            elif name == "replay" and value is not None:
                value = Path(str(value))
            elif name == "instruments" and isinstance(value, str):
                value = tuple(v.strip().upper() for v in value.split(",") if v.strip())
            elif name == "instruments" and isinstance(value, list | tuple):
                value = tuple(str(v).upper() for v in value)
            elif name == "instrument_rules" and isinstance(value, str | list | tuple):
                items = value.split(",") if isinstance(value, str) else value
                value = tuple(str(v).strip() for v in items if str(v).strip())
                parse_rules(value)  # fail early on a malformed override
            setattr(config, name, value)
        return config


def parse_rules(specs: tuple[str, ...]) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """Parse ``INST:tickSz:lotSz:minSz`` overrides into ``{inst_id: (tick, lot, min)}``."""
    rules: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
    for spec in specs:
        parts = spec.split(":")
        if len(parts) != 4:
            raise ValueError(f"instrument rule {spec!r} is not INST:tickSz:lotSz:minSz")
        try:
            tick, lot, min_sz = (Decimal(p) for p in parts[1:])
        except ArithmeticError:
            raise ValueError(f"instrument rule {spec!r} has a non-number size") from None
        if min(tick, lot, min_sz) <= 0:
            raise ValueError(f"instrument rule {spec!r} needs positive sizes")
        rules[parts[0].strip().upper()] = (tick, lot, min_sz)
    return rules
