"""Everything a service function needs, built once per worker process."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from worker.cache import TTLCache, WorkerCache
from worker.domain.errors import InvalidInstrument
from worker.domain.money import InstrumentRules
from worker.exchange.port import Exchange
from worker.ledger.db import Ledger, utcnow
from worker.settings import Settings
from worker.slot_events import SlotEvents

RULES_TTL_SECONDS = 300.0


class Scheduler(Protocol):
    """Sends a follow-up task (a Celery ``send_task`` in production)."""

    def __call__(self, task: str, args: list[Any], countdown: float | None = None) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    ledger: Ledger
    exchange: Exchange
    schedule: Scheduler
    cache: WorkerCache = field(default_factory=WorkerCache)
    events: SlotEvents = field(default_factory=lambda: SlotEvents(None))
    clock: Callable[[], datetime] = utcnow

    rules_cache: TTLCache[str, InstrumentRules] = field(
        default_factory=lambda: TTLCache(4096, RULES_TTL_SECONDS)
    )

    def now(self) -> datetime:
        return self.clock()

    def rules(self, inst_id: str, *, require_live: bool = True) -> InstrumentRules:
        """The instrument's rules, cached for a few minutes (they change rarely).

        ``require_live=False`` also returns a suspended instrument's rules: its orders and
        lots must still be settled.
        """
        rules = self.rules_cache.get(inst_id)
        if rules is None:
            rules = self.exchange.instrument(inst_id, require_live=False)
            self.rules_cache.put(inst_id, rules)
        if require_live and not rules.live:
            raise InvalidInstrument(f"instrument {inst_id} is not live")
        return rules

    def slot_freed(self, inst_id: str, strategy: str) -> None:
        """A slot may buy again: drop our cache entry and tell the other workers."""
        self.cache.slot_freed((inst_id, strategy))
        self.events.publish(inst_id, strategy)


_runtime: Runtime | None = None
_runtime_pid: int | None = None


def get_runtime() -> Runtime:
    """The process's runtime (rebuilt in a forked child)."""
    global _runtime, _runtime_pid
    if _runtime is None or _runtime_pid != os.getpid():
        from worker.app import app
        from worker.exchange.factory import build_exchange
        from worker.settings import get_settings

        settings = get_settings()

        def schedule(task: str, args: list[Any], countdown: float | None = None) -> None:
            app.send_task(task, args=args, countdown=countdown)

        rt = Runtime(
            settings=settings,
            ledger=Ledger.from_url(settings.database_url),
            exchange=build_exchange(settings),
            schedule=schedule,
            events=SlotEvents(settings.redis_url),
        )
        rt.events.listen(
            lambda slot: rt.cache.clear() if slot is None else rt.cache.slot_freed(slot)
        )
        _runtime, _runtime_pid = rt, os.getpid()
    return _runtime


def set_runtime(rt: Runtime | None) -> None:
    """Install a runtime (tests, embedded runs)."""
    global _runtime, _runtime_pid
    _runtime, _runtime_pid = rt, (os.getpid() if rt else None)
