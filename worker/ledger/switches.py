"""The pause switches: database flags that the workers read under the slot lock.

``paused`` stops every buy; ``paused:<strategy>`` stops one strategy's buys. Sells always
continue. A refused buy is recorded with reason ``paused`` and a detail naming the switch
and since when it is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from worker.domain.describe import when
from worker.ledger.db import Executor, Ledger
from worker.ledger.models import EngineFlag

ALL = "paused"


def flag_name(strategy: str | None) -> str:
    """The flag of one strategy's switch, or of the switch for every buy (``None``)."""
    return ALL if strategy is None else f"{ALL}:{strategy}"


@dataclass(frozen=True, slots=True)
class Pause:
    """A switch that is on: ``strategy`` None means every buy."""

    strategy: str | None
    since: datetime

    def describe(self) -> str:
        who = "every buy is paused" if self.strategy is None else f"{self.strategy} is paused"
        resume = "python -m worker resume" + (f" {self.strategy}" if self.strategy else "")
        return f"{who} since {when(self.since)} (`{resume}` ends it)"


def set_paused(ledger: Ledger, strategy: str | None, paused: bool, now: datetime) -> bool:
    """Turn a switch on or off; return whether it changed (``since`` is kept if it did not)."""
    name = flag_name(strategy)
    with ledger.begin() as s:
        flag = s.get(EngineFlag, name, with_for_update=True)
        if flag is None:
            s.add(EngineFlag(name=name, enabled=paused, updated_at=now))
            return paused
        if flag.enabled == paused:
            return False
        flag.enabled, flag.updated_at = paused, now
        return True


def pauses(session: Executor, strategy: str | None = None) -> list[Pause]:
    """The switches that are on (only those that stop ``strategy``, when given)."""
    query = select(EngineFlag.name, EngineFlag.updated_at).where(EngineFlag.enabled.is_(True))
    if strategy is not None:
        query = query.where(or_(EngineFlag.name == ALL, EngineFlag.name == flag_name(strategy)))
    else:
        query = query.where(or_(EngineFlag.name == ALL, EngineFlag.name.like(f"{ALL}:%")))
    out = []
    for name, since in session.execute(query.order_by(EngineFlag.name)).all():
        out.append(Pause(None if name == ALL else name.split(":", 1)[1], since))
    return out


def pause_detail(session: Executor, strategy: str) -> str:
    """Why a buy of ``strategy`` was refused as ``paused``: the switches and since when."""
    found = pauses(session, strategy)
    return "; ".join(p.describe() for p in found) or "paused (the switch was turned off since)"
