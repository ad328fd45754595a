"""``python -m worker why``: why a strategy did or did not buy an instrument at a time.

For each strategy, about its trigger bucket containing the time: the signal and its outcome
with the concrete cause, what a buy bought, or, when nothing fired, how close the strategy
came (the feed's closest approach) and whether the feed was listening at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from worker.domain.buckets import Bucket, bucket_at
from worker.domain.describe import age, clock, num, pct, when
from worker.domain.money import quantize_str
from worker.domain.strategies import BATCH, display_name
from worker.readmodels import (
    Approach,
    Heard,
    OrderView,
    SignalView,
    approach_in_bucket,
    feed_last_heard,
    heard,
    heard_around,
    heard_others,
    signals_in_bucket,
)
from worker.settings import Settings

# What each recorded skip reason means, before its recorded facts.
REASONS = {
    "slot_busy": "the slot had an order open",
    "unsold_lot": "the slot held an unsold lot",
    "cooldown": "the slot was in its cooldown after a buy",
    "paused": "buys were paused",
    "risk_limit": "a risk limit was reached",
    "expired": "the signal had expired",
    "cached_busy": "a worker's cache said the slot was busy",
    "below_min_size": "the order would not buy a sellable lot",
    "disabled": "the strategy is disabled",
    "invalid_instrument": "the exchange does not trade the instrument",
    "exchange_error": "the exchange kept failing",
}
# Silences shorter than this are ordinary (a quiet market, a sample a second apart).
SILENCE = timedelta(seconds=60)


@dataclass
class Answer:
    """One strategy's answer: a verdict, the sentences, and the facts behind them."""

    strategy: str
    bucket: Bucket
    verdict: str  # bought | ordered | not_filled | skipped | invalid | no_signal | not_sent ...
    sentences: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "name": display_name(self.strategy),
            "bucket": {
                "kind": self.bucket.kind,
                "name": self.bucket.name,
                "start": self.bucket.start.isoformat(),
                "end": self.bucket.end.isoformat(),
            },
            "verdict": self.verdict,
            "sentences": self.sentences,
            **self.facts,
        }


def why(
    s: Session, settings: Settings, inst_id: str, strategies: list[str], at: datetime, now: datetime
) -> list[Answer]:
    """The answer of each strategy in ``strategies`` about the bucket containing ``at``."""
    return [_answer(s, settings, inst_id, st, at, now) for st in strategies]


def _answer(
    s: Session, settings: Settings, inst_id: str, strategy: str, at: datetime, now: datetime
) -> Answer:
    config = settings.strategies
    config.params(strategy)  # a strategy this build does not know: ConfigError
    bucket = bucket_at(strategy, at, config.original_gap.gap_window_seconds)
    answer = Answer(strategy, bucket, "no_signal")
    signals = signals_in_bucket(s, inst_id, bucket)
    if signals:
        for signal in signals:
            _signal(answer, signal)
        answer.facts["signals"] = [_signal_json(sig) for sig in signals]
        return answer
    if not config.params(strategy).enabled:
        answer.verdict = "disabled"
        answer.sentences.append(
            f"{strategy} is disabled (enabled = false in STRATEGY_CONFIG): no signal is sent for it"
        )
    watched = settings.instrument_list
    if watched is not None and inst_id not in watched:
        answer.verdict = "not_subscribed"
        answer.sentences.append(
            f"{inst_id} is not in INSTRUMENTS ({settings.INSTRUMENTS}): the feed does not watch it"
        )
    approach = approach_in_bucket(s, inst_id, bucket)
    if approach is not None:
        _approach(answer, approach, config.batch_buy_ws.min_count, now)
    if answer.verdict in ("no_signal", "lost", "not_sent", "not_subscribed"):
        _coverage(s, answer, inst_id, now, approach is not None)
    if bucket.start > now:
        answer.sentences.insert(0, f"{bucket.describe()} has not begun yet")
    return answer


# -- a signal fired -----------------------------------------------------------------------------


def _signal(answer: Answer, sig: SignalView) -> None:
    day = answer.bucket.start.date()
    said = f"signal {sig.signal_id} (received {_at(sig.received_at, day)})"
    if sig.outcome == "skipped":
        answer.verdict = "skipped"
        meaning = REASONS.get(sig.reason, sig.reason)
        facts = sig.detail or "no details were recorded with it"
        answer.sentences.append(f"{said} was skipped ({sig.reason}): {meaning}: {facts}")
        return
    if sig.outcome == "invalid":
        answer.verdict = "invalid"
        answer.sentences.append(f"{said} was invalid: {sig.detail}")
        return
    order = sig.order
    if order is None:
        answer.verdict = sig.outcome
        answer.sentences.append(f"{said} was {sig.outcome} {sig.reason}".rstrip())
        return
    answer.sentences.append(
        f"{said} was accepted: buy order {order.cl_ord_id}, {num(order.sz)} at "
        f"{num(order.px)}, placed {_at(order.created_at, day)}, is {order.state}"
    )
    answer.verdict = _order(answer.sentences, order, day)


def _order(out: list[str], order: OrderView, day: date) -> str:
    quote = order.inst_id.rpartition("-")[2]
    if order.filled_sz > 0:
        fills = ", ".join(f"{num(f.sz)} at {num(f.px)} ({_at(f.at, day)})" for f in order.fills)
        fee = f"; fee {num(order.fee)} {order.fee_ccy}" if order.fee else ""
        out.append(
            f"it bought {num(order.filled_sz)} at {num(order.avg_px)} on average"
            + (f" in {len(order.fills)} fill(s): {fills}" if fills else "")
            + fee
        )
    elif order.state in ("rejected", "failed"):
        out.append(f"nothing was bought: the order {order.state} ({order.last_error or '-'})")
        return "not_filled"
    elif order.state == "canceled":
        out.append("nothing was bought: the order was canceled before anything filled")
        return "not_filled"
    else:
        return "ordered"
    lot = order.lot
    if lot is None:
        out.append("its lot is not recorded yet (reconciliation makes it)")
    elif lot.state == "closed":
        how = f", settled by hand ({lot.settlement})" if lot.settlement else ""
        out.append(
            f"lot {lot.id} ({num(lot.size)}) closed {when(lot.closed_at or lot.opened_at)}"
            f"{how}: sold {num(lot.sold_sz)} for {num(lot.proceeds)} {quote}, cost "
            f"{num(lot.cost)} {quote}, P&L {_signed(lot.pnl)} {quote}"
        )
    elif lot.state == "needs_attention":
        out.append(
            f"lot {lot.id} ({num(lot.remaining)} unsold) needs attention: settle it with "
            f"`python -m worker settle-lot {lot.id}`"
        )
    else:
        out.append(
            f"lot {lot.id} holds {num(lot.remaining)} (take-profit at {num(lot.take_profit_px)},"
            f" time exit {when(lot.exit_after)})"
        )
    return "bought"


def _signal_json(sig: SignalView) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "signal_id": sig.signal_id,
        "outcome": sig.outcome,
        "reason": sig.reason,
        "detail": sig.detail,
        "received_at": sig.received_at.isoformat(),
    }
    order = sig.order
    if order is not None:
        doc["order"] = {
            "cl_ord_id": order.cl_ord_id,
            "state": order.state,
            "px": _str(order.px),
            "sz": _str(order.sz),
            "filled_sz": _str(order.filled_sz),
            "avg_px": _str(order.avg_px),
            "fills": [
                {"trade_id": f.trade_id, "px": _str(f.px), "sz": _str(f.sz), "at": f.at.isoformat()}
                for f in order.fills
            ],
        }
        if order.lot is not None:
            lot = order.lot
            doc["lot"] = {
                "lot_id": lot.id,
                "state": lot.state,
                "size": _str(lot.size),
                "sold_sz": _str(lot.sold_sz),
                "pnl": _str(lot.pnl) if lot.state == "closed" else None,
            }
    return doc


# -- nothing fired ------------------------------------------------------------------------------


def _approach(answer: Answer, approach: Approach, min_count: int, now: datetime) -> None:
    bucket = answer.bucket
    where = {"hour": "this hour", "window": "in this window", "day": "this day"}[bucket.kind]
    ref = {
        "hour": "the open",
        "window": f"the trailing {_seconds(bucket)} s high",
        "day": "sodUtc0",
    }[bucket.kind]
    depth = approach.depth
    if approach.fired_at is not None:
        if approach.detail.startswith("the feed did not send it"):
            answer.verdict = "not_sent"
            answer.sentences.append(
                f"the feed fired at {clock(approach.fired_at)}, but "
                + approach.detail.removeprefix("the feed ")
            )
        else:
            answer.verdict = "lost"
            answer.sentences.append(
                f"the feed fired at {clock(approach.fired_at)}, but no worker recorded the "
                "signal: it was lost between the feed and the workers (was the broker up? "
                "look for feed.publish_failed in the feed's log)"
            )
    if depth is None:
        if approach.reference is None:
            answer.sentences.append(
                f"the feed did not know {ref} of {bucket.describe()} (started mid-hour without "
                "a candle?): the strategy cannot fire without it"
            )
        else:
            answer.sentences.append(
                f"the price never went below {ref} {num(approach.reference)} {where}"
            )
    else:
        assert approach.closest is not None and approach.closest_at is not None
        assert approach.reference is not None
        sentence = (
            f"deepest drop {where} {pct(depth)} below {ref} {num(approach.reference)} "
            f"({num(approach.closest)} at {clock(approach.closest_at)}); trigger "
            f"{pct(approach.trigger)}"
        )
        if depth < approach.trigger:
            sentence += f", {pct(approach.trigger - depth)} short"
        answer.sentences.append(sentence)
    if answer.strategy == BATCH.id and approach.peak_count is not None:
        answer.sentences.append(
            f"at most {approach.peak_count} instrument(s) were {pct(approach.trigger)} or more "
            f"below their open at once; {BATCH.name} needs {min_count}"
        )
    if approach.detail and not approach.detail.startswith("the feed"):
        answer.sentences.append(approach.detail)
    if not approach.complete:
        if bucket.end > now:
            answer.sentences.append(
                f"{bucket.describe()} is still running (the feed's last record: "
                f"{clock(approach.updated_at)})"
            )
        else:
            answer.sentences.append(
                f"no feed run watched {bucket.describe()} to its end (stopped or restarted)"
            )
    answer.facts["closest_approach"] = {
        "reference": _str(approach.reference),
        "closest": _str(approach.closest),
        "closest_at": approach.closest_at.isoformat() if approach.closest_at else None,
        "depth": _str(depth),
        "trigger": _str(approach.trigger),
        "fired_at": approach.fired_at.isoformat() if approach.fired_at else None,
        "peak_count": approach.peak_count,
        "detail": approach.detail,
        "complete": approach.complete,
    }


def _coverage(s: Session, answer: Answer, inst_id: str, now: datetime, approached: bool) -> None:
    """Was the feed listening? Its silences in the bucket, or why it has no record at all."""
    bucket = answer.bucket
    start, end = bucket.start, min(bucket.end, now)
    if end <= start:
        return
    found = heard(s, inst_id, start, end)
    answer.facts["silences"] = []
    if not found:
        if approached:
            return
        _nothing_heard(s, answer, inst_id, start, end, now)
        return
    last_record = max(h.updated_at for h in found)
    if bucket.end > now:
        end = min(end, last_record)
    threshold = min(SILENCE, (bucket.end - bucket.start) / 4)
    for a, b in _silences(found, start, end, threshold):
        # Other instruments heard well inside the silence: the feed itself was listening.
        others = heard_others(s, inst_id, a + threshold / 2, b - threshold / 2)
        span = f"{clock(a)}-{clock(b)} ({age((b - a).total_seconds())})"
        if others:
            answer.sentences.append(
                f"no ticker for {inst_id} {span}, while the feed heard other instruments"
            )
        else:
            answer.sentences.append(f"the feed was down or disconnected {span}")
        answer.facts["silences"].append(
            {"from": a.isoformat(), "to": b.isoformat(), "other_instruments_heard": others}
        )
        if answer.verdict == "no_signal":
            answer.verdict = "feed_down" if not others else "not_heard"


def _nothing_heard(
    s: Session, answer: Answer, inst_id: str, start: datetime, end: datetime, now: datetime
) -> None:
    bucket = answer.bucket
    if heard_others(s, inst_id, start, end):
        if answer.verdict == "no_signal":
            answer.verdict = "not_subscribed"
        answer.sentences.append(
            f"the feed heard other instruments in {bucket.describe()} but never {inst_id}: "
            "the running feed does not subscribe it (its INSTRUMENTS)"
        )
        return
    before, after = heard_around(s, inst_id, start, end)
    if answer.verdict == "no_signal":
        answer.verdict = "feed_down"
    if before is None and after is None and feed_last_heard(s) is None:
        answer.sentences.append(
            "the feed has recorded nothing at all: is `python -m feed` running against this "
            "DATABASE_URL? (its records are kept APPROACH_RETENTION_DAYS days)"
        )
        return
    since = when(before) if before else "before its oldest record"
    until = when(after) if after else ("now" if bucket.end > now else "its newest record")
    answer.sentences.append(
        f"the feed recorded nothing for {inst_id} in {bucket.describe()}: it was down or not "
        f"watching from {since} to {until}"
    )


def _silences(
    found: list[Heard], start: datetime, end: datetime, threshold: timedelta
) -> list[tuple[datetime, datetime]]:
    """The spans of ``[start, end)`` longer than ``threshold`` in which no run heard a tick."""
    spans = sorted(span for h in found for span in h.spans())
    out = []
    cursor = start
    for a, b in spans:
        if a - cursor > threshold and a < end:
            out.append((cursor, min(a, end)))
        cursor = max(cursor, b)
    if end - cursor > threshold:
        out.append((cursor, end))
    return out


def _at(dt: datetime, day: date) -> str:
    """The time of day when it is the bucket's day, else the full time."""
    return clock(dt) if dt.date() == day else when(dt)


def _seconds(bucket: Bucket) -> int:
    return int((bucket.end - bucket.start).total_seconds())


def _signed(d: Decimal) -> str:
    return ("+" if d > 0 else "") + num(d)


def _str(d: Decimal | None) -> str | None:
    """The same string for the same number on every database (no trailing zeros)."""
    return None if d is None else quantize_str(d)
