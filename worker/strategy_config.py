"""Per-strategy parameters from the ``STRATEGY_CONFIG`` TOML file.

One table per strategy id; every key is optional and falls back to the default below;
``enabled = false`` switches a strategy off. Unknown tables or keys are errors.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from worker.domain.errors import ConfigError
from worker.domain.strategies import STRATEGIES
from worker.validation import Problem, explain


class StrategyParams(BaseModel):
    """What every strategy has: sizing and exits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    order_usdt: Decimal = Field(default=Decimal("10"), gt=0)
    take_profit_pct: Decimal = Field(default=Decimal("0.01"), gt=0, lt=10)
    stop_loss_pct: Decimal = Field(default=Decimal("0.05"), gt=0, lt=1)
    max_hold_seconds: int = Field(default=3600, gt=0)


class HourlyLimitParams(StrategyParams):
    drop_pct: Decimal = Field(default=Decimal("0.03"), gt=0, lt=1)


class OriginalGapParams(StrategyParams):
    gap_window_seconds: int = Field(default=60, gt=0, le=86400)
    gap_pct: Decimal = Field(default=Decimal("0.02"), gt=0, lt=1)


class StableBuyParams(StrategyParams):
    max_range: Decimal = Field(default=Decimal("0.06"), gt=0)
    min_volume_usdt: Decimal = Field(default=Decimal("1000000"), ge=0)
    drop_pct: Decimal = Field(default=Decimal("0.015"), gt=0, lt=1)


class BatchBuyParams(StrategyParams):
    min_count: int = Field(default=5, ge=1)
    max_count: int = Field(default=10, ge=1)
    drop_pct: Decimal = Field(default=Decimal("0.03"), gt=0, lt=1)


class StrategyConfig(BaseModel):
    """One field per strategy id of ``worker.domain.strategies``, in the same order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hourly_limit_ws: HourlyLimitParams = HourlyLimitParams()
    original_gap: OriginalGapParams = OriginalGapParams()
    stable_buy_ws: StableBuyParams = StableBuyParams()
    batch_buy_ws: BatchBuyParams = BatchBuyParams()

    def params(self, strategy: str) -> StrategyParams:
        value = getattr(self, strategy, None)
        if not isinstance(value, StrategyParams):
            raise ConfigError(f"unknown strategy {strategy!r}")
        return value

    def enabled(self) -> list[str]:
        """The ids of the strategies switched on, in registry order."""
        return [strategy for strategy in STRATEGIES if self.params(strategy).enabled]


def _float_to_decimal(data: Any) -> Any:
    # TOML floats would lose exactness on the way to Decimal; go through their repr.
    if isinstance(data, dict):
        return {k: _float_to_decimal(v) for k, v in data.items()}
    if isinstance(data, float):
        return Decimal(repr(data))
    return data


def _describe(problem: Problem) -> str:
    if problem.kind == "extra_forbidden":
        kind = "strategy" if len(problem.loc) == 1 else "key"
        return f"unknown {kind} [{problem.where}]"
    return f"{problem.where}: {problem.message}"


def parse_strategy_config(data: dict[str, Any], source: str = "STRATEGY_CONFIG") -> StrategyConfig:
    """Validate a parsed TOML mapping; raise ``ConfigError`` with one readable sentence."""
    try:
        return StrategyConfig.model_validate(_float_to_decimal(data))
    except pydantic.ValidationError as exc:
        raise ConfigError(f"{source}: {explain(exc, _describe)}") from None


def load_strategy_config(path: str | None) -> StrategyConfig:
    """Read ``path`` (TOML); ``None`` or empty means every default."""
    if not path:
        return StrategyConfig()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"STRATEGY_CONFIG: cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"STRATEGY_CONFIG: {path} is not valid TOML: {exc}") from None
    return parse_strategy_config(data, f"STRATEGY_CONFIG {path}")
