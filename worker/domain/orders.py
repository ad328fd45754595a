"""The order lifecycle: one enum, one event enum, one transition table.

``apply_event`` is the only function that decides an order's next state. News from the
exchange can skip steps (the first thing heard about an ambiguous placement may be that it
filled) and can arrive out of order; the table therefore says, for every state and event,
whether to move, to ignore the event as stale, or to refuse it as impossible.
"""

from __future__ import annotations

import enum

from worker.domain.errors import IllegalTransition


class Side(enum.StrEnum):
    BUY = "buy"  # an entry: it opens a position (a lot) in its slot
    SELL = "sell"  # an exit of a lot: take-profit, stop loss, time exit, manual


class OrderState(enum.StrEnum):
    PENDING_SUBMIT = "pending_submit"  # intent stored; the exchange has not confirmed it
    LIVE = "live"  # resting on the book, nothing filled
    PARTIALLY_FILLED = "partially_filled"  # resting, part of it filled
    FILLED = "filled"  # terminal: all of it filled
    CANCELED = "canceled"  # terminal: canceled, possibly after partial fills
    REJECTED = "rejected"  # terminal by inference: we read the answer as a refusal
    FAILED = "failed"  # terminal by inference: not found after its deadline, or never sent

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_inferred(self) -> bool:
        """Terminal only by our inference: the exchange's facts overturn it (promise 4)."""
        return self in INFERRED_STATES


TERMINAL_STATES = frozenset(
    {OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.FAILED}
)
OPEN_STATES = frozenset(set(OrderState) - TERMINAL_STATES)
INFERRED_STATES = frozenset({OrderState.REJECTED, OrderState.FAILED})


class OrderEvent(enum.StrEnum):
    ACCEPTED = "accepted"  # the exchange holds the order and nothing is filled
    PARTIALLY_FILLED = "partially_filled"  # the exchange reports part of it filled
    FILLED = "filled"  # the exchange reports it completely filled
    CANCELED = "canceled"  # the exchange reports it canceled
    REJECTED = "rejected"  # the exchange refused the placement explicitly
    NOT_FOUND = "not_found"  # the exchange explicitly has no such order (after the timeout)


class Outcome(enum.Enum):
    MOVE = "move"
    IGNORE = "ignore"  # stale or repeated news: keep the current state
    ILLEGAL = "illegal"  # contradicts what we know: never applied


S, E = OrderState, OrderEvent
_M, _I, _X = Outcome.MOVE, Outcome.IGNORE, Outcome.ILLEGAL

# TRANSITIONS[state][event] = (outcome, target state for MOVE)
TRANSITIONS: dict[OrderState, dict[OrderEvent, tuple[Outcome, OrderState | None]]] = {
    S.PENDING_SUBMIT: {
        E.ACCEPTED: (_M, S.LIVE),
        E.PARTIALLY_FILLED: (_M, S.PARTIALLY_FILLED),
        E.FILLED: (_M, S.FILLED),
        E.CANCELED: (_M, S.CANCELED),
        E.REJECTED: (_M, S.REJECTED),
        E.NOT_FOUND: (_M, S.FAILED),
    },
    S.LIVE: {
        E.ACCEPTED: (_I, None),
        E.PARTIALLY_FILLED: (_M, S.PARTIALLY_FILLED),
        E.FILLED: (_M, S.FILLED),
        E.CANCELED: (_M, S.CANCELED),
        E.REJECTED: (_X, None),
        # A placed order that vanished: OKX drops canceled, never-filled orders from its
        # history after two hours. It was canceled.
        E.NOT_FOUND: (_M, S.CANCELED),
    },
    S.PARTIALLY_FILLED: {
        E.ACCEPTED: (_I, None),
        E.PARTIALLY_FILLED: (_I, None),  # a further fill: the fill data changes, not the state
        E.FILLED: (_M, S.FILLED),
        E.CANCELED: (_M, S.CANCELED),
        E.REJECTED: (_X, None),
        E.NOT_FOUND: (_M, S.CANCELED),
    },
    S.FILLED: {
        E.ACCEPTED: (_I, None),
        E.PARTIALLY_FILLED: (_I, None),
        E.FILLED: (_I, None),
        E.CANCELED: (_X, None),
        E.REJECTED: (_X, None),
        E.NOT_FOUND: (_I, None),  # filled orders age out of the history too
    },
    S.CANCELED: {
        E.ACCEPTED: (_I, None),
        E.PARTIALLY_FILLED: (_I, None),
        E.FILLED: (_X, None),
        E.CANCELED: (_I, None),
        E.REJECTED: (_X, None),
        E.NOT_FOUND: (_I, None),
    },
    # Rejected and failed are inferences: when the exchange later shows the order, its facts
    # win and the order is taken back (the services adopt it, or cancel it and sell what
    # it bought when the slot is taken by then).
    S.REJECTED: {
        E.ACCEPTED: (_M, S.LIVE),
        E.PARTIALLY_FILLED: (_M, S.PARTIALLY_FILLED),
        E.FILLED: (_M, S.FILLED),
        E.CANCELED: (_M, S.CANCELED),
        E.REJECTED: (_I, None),
        E.NOT_FOUND: (_I, None),
    },
    S.FAILED: {
        E.ACCEPTED: (_M, S.LIVE),
        E.PARTIALLY_FILLED: (_M, S.PARTIALLY_FILLED),
        E.FILLED: (_M, S.FILLED),
        E.CANCELED: (_M, S.CANCELED),
        E.REJECTED: (_I, None),
        E.NOT_FOUND: (_I, None),
    },
}
del S, E, _M, _I, _X


def apply_event(state: OrderState, event: OrderEvent) -> OrderState:
    """Return the state after ``event``; the same state for stale news; raise if impossible."""
    outcome, target = TRANSITIONS[state][event]
    if outcome is Outcome.ILLEGAL:
        raise IllegalTransition(f"order in state {state} cannot take event {event}")
    if outcome is Outcome.IGNORE:
        return state
    assert target is not None
    return target


def event_for_exchange_state(state: OrderState) -> OrderEvent:
    """Map a state the exchange reported to the event that announces it."""
    return {
        OrderState.LIVE: OrderEvent.ACCEPTED,
        OrderState.PARTIALLY_FILLED: OrderEvent.PARTIALLY_FILLED,
        OrderState.FILLED: OrderEvent.FILLED,
        OrderState.CANCELED: OrderEvent.CANCELED,
    }[state]
