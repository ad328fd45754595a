"""One typed, validated settings object per process, from the environment and ``.env``.

Nothing else in Limitflow reads ``os.environ``. Tests build settings from a dict:
``Settings.model_validate({...})`` or ``load_settings({...})``.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from worker.domain.errors import ConfigError
from worker.domain.ids import is_inst_id
from worker.domain.sizing import DEFAULT_FEE_RATE_BOUND
from worker.logs import mask_passwords
from worker.strategy_config import StrategyConfig, load_strategy_config
from worker.validation import Problem, explain

# The local simulator's address and demo credentials: defaults never point at real money.
SIM_REST_URL = "http://127.0.0.1:18080"
SIM_WS_URL = "ws://127.0.0.1:18080/ws/v5"
SIM_API_KEY = "limitflow-sim-key"
SIM_API_SECRET = "limitflow-sim-secret"
SIM_API_PASSPHRASE = "limitflow-sim-passphrase"

DEFAULT_HOME = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # Stores. Empty means the embedded default under LIMITFLOW_HOME: SQLite and a broker
    # that needs no server.
    DATABASE_URL: str = ""
    CELERY_BROKER_URL: str = ""
    CELERY_RESULT_BACKEND: str = ""
    LIMITFLOW_HOME: Path = DEFAULT_HOME

    # The exchange: "okx" (REST + websocket at the OKX_* URLs) or "memory://HOST:PORT" (an
    # in-memory venue served by a test or the demo).
    LIMITFLOW_EXCHANGE: str = "okx"
    OKX_REST_URL: str = SIM_REST_URL
    OKX_WS_PUBLIC_URL: str = f"{SIM_WS_URL}/public"
    OKX_WS_PRIVATE_URL: str = f"{SIM_WS_URL}/private"
    OKX_WS_BUSINESS_URL: str = f"{SIM_WS_URL}/business"
    OKX_API_KEY: SecretStr = SecretStr(SIM_API_KEY)
    OKX_API_SECRET: SecretStr = SecretStr(SIM_API_SECRET)
    OKX_API_PASSPHRASE: SecretStr = SecretStr(SIM_API_PASSPHRASE)
    OKX_DEMO: bool = True

    # Engine timing and limits.
    MEMORY_SYNC_INTERVAL_SECONDS: int = Field(default=300, ge=0)
    PENDING_TIMEOUT_SECONDS: int = Field(default=60, gt=0)
    BUY_GUARD_WINDOW_SECONDS: int = Field(default=7200, ge=0)
    SIGNAL_TTL_SECONDS: int = Field(default=10, gt=0)
    BUY_ORDER_TTL_SECONDS: int = Field(default=300, gt=0)
    MAX_OPEN_POSITIONS: int = Field(default=20, ge=0)
    MAX_ORDER_USDT: pydantic.condecimal(gt=0) = Field(default=100)  # type: ignore[valid-type]
    # Exits of one lot the exchange may refuse before the lot needs an operator's attention.
    MAX_EXIT_REFUSALS: int = Field(default=5, ge=1)
    # Upper bound of the fee rate a buy pays in the base currency: buys are sized so that what
    # they net after it is still a sellable lot (see ``worker.domain.sizing``).
    FEE_RATE_BOUND: pydantic.condecimal(ge=0, lt=Decimal("0.1")) = DEFAULT_FEE_RATE_BOUND  # type: ignore[valid-type]
    STRATEGY_CONFIG: str = ""
    INSTRUMENTS: str = "BTC-USDT,ETH-USDT"
    # How long the feed's closest approaches and coverage are kept (``python -m worker why``).
    APPROACH_RETENTION_DAYS: int = Field(default=14, gt=0)

    # Logs: "text" (key=value) or "json".
    LOG_FORMAT: Literal["text", "json"] = "text"
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Observability. METRICS_PORT: serve Prometheus /metrics there (unset: no metrics).
    # NOTIFY_URLS: Apprise URLs for alerts (they hold tokens: a secret). Unset: no alerts.
    METRICS_PORT: int | None = Field(default=None, ge=1, le=65535)
    NOTIFY_URLS: SecretStr = SecretStr("")
    # OKX_DEMO=false is refused while an OKX URL points at loopback, unless this is set.
    LIMITFLOW_ALLOW_LOCAL_LIVE: bool = False

    @field_validator("METRICS_PORT", mode="before")
    @classmethod
    def _empty_is_off(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("DATABASE_URL")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value:
            try:
                url = make_url(value)
            except ArgumentError:
                raise ValueError("is not a database URL (postgresql://… or sqlite:///…)") from None
            if url.get_backend_name() not in ("postgresql", "sqlite"):
                raise ValueError("must be a postgresql:// or sqlite:/// URL")
        return value

    @field_validator("LIMITFLOW_EXCHANGE")
    @classmethod
    def _check_exchange(cls, value: str) -> str:
        if value != "okx" and not value.startswith("memory://"):
            raise ValueError("must be 'okx' or 'memory://HOST:PORT'")
        return value

    @field_validator("INSTRUMENTS")
    @classmethod
    def _check_instruments(cls, value: str) -> str:
        if value.strip().lower() == "all":
            return "all"
        items = [v.strip().upper() for v in value.split(",") if v.strip()]
        if not items:
            raise ValueError("must list instrument ids (BTC-USDT,ETH-USDT) or say 'all'")
        for item in items:
            if not is_inst_id(item):
                raise ValueError(f"{item!r} is not an instrument id like BTC-USDT")
        return ",".join(items)

    # Derived values -------------------------------------------------------------------

    @property
    def home(self) -> Path:
        return self.LIMITFLOW_HOME.resolve()

    @property
    def database_url(self) -> str:
        return self.DATABASE_URL or f"sqlite:///{self.home / 'limitflow.db'}"

    @property
    def broker_url(self) -> str:
        return self.CELERY_BROKER_URL or "filesystem://"

    @property
    def result_backend(self) -> str:
        if self.CELERY_RESULT_BACKEND:
            return self.CELERY_RESULT_BACKEND
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return f"db+sqlite:///{self.home / 'celery-results.db'}"

    @property
    def broker_folder(self) -> Path:
        return self.home / "broker"

    @property
    def redis_url(self) -> str | None:
        """The Redis used for cache invalidation, when there is one."""
        for url in (self.broker_url, self.result_backend):
            if url.startswith(("redis://", "rediss://")):
                return url
        return None

    @property
    def instrument_list(self) -> list[str] | None:
        """The configured instruments, or ``None`` for every live SPOT-USDT pair."""
        return None if self.INSTRUMENTS == "all" else self.INSTRUMENTS.split(",")

    @cached_property
    def strategies(self) -> StrategyConfig:
        return load_strategy_config(self.STRATEGY_CONFIG or None)

    @property
    def okx_urls(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in OKX_URL_SETTINGS}

    @property
    def notify_urls(self) -> list[str]:
        """The Apprise URLs (comma, space or newline separated)."""
        return [u for u in re.split(r"[\s,]+", self.NOTIFY_URLS.get_secret_value()) if u]


OKX_URL_SETTINGS = (
    "OKX_REST_URL",
    "OKX_WS_PUBLIC_URL",
    "OKX_WS_PRIVATE_URL",
    "OKX_WS_BUSINESS_URL",
)


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (the local simulator, or anything on loopback)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def live_money_refusal(settings: Settings) -> str | None:
    """The sentence refusing real money while an OKX URL is local; None when all is well."""
    if settings.OKX_DEMO or settings.LIMITFLOW_ALLOW_LOCAL_LIVE:
        return None
    local = [name for name, url in settings.okx_urls.items() if is_loopback_url(url)]
    if not local:
        return None
    return (
        f"OKX_DEMO=false (real money) is refused while {', '.join(local)} "
        f"{'points' if len(local) == 1 else 'point'} at this machine (the local simulator or "
        "loopback): set every OKX_*_URL to OKX, or keep OKX_DEMO=true"
    )


def _describe(problem: Problem) -> str:
    name = problem.where
    secret = "SECRET" in name or "PASSPHRASE" in name or "KEY" in name
    # A store URL may carry a password; so may a URL pasted into the wrong setting.
    shown = "" if secret else f" (got {mask_passwords(repr(problem.got))})"
    return f"{name} {problem.message}{shown}"


def load_settings(values: dict[str, Any] | None = None) -> Settings:
    """Build and validate settings (from ``values`` if given, else the environment).

    Raise ``ConfigError`` with one sentence naming each bad setting.
    """
    try:
        settings = Settings.model_validate(values) if values is not None else Settings()
        settings.strategies  # noqa: B018  (validate the strategy file at start)
    except pydantic.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {explain(exc, _describe)}") from None
    refusal = live_money_refusal(settings)
    if refusal is not None:
        raise ConfigError(refusal)
    return settings


_settings: Settings | None = None


def get_settings() -> Settings:
    """The process's settings, built once. On a bad value: one clear line and exit 2."""
    global _settings
    if _settings is None:
        try:
            _settings = load_settings()
        except ConfigError as exc:
            print(f"limitflow: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    return _settings


def use_settings(settings: Settings | None) -> None:
    """Install ``settings`` as the process's settings (tests, embedded runs)."""
    global _settings
    _settings = settings
