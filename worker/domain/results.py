"""What the services answer when they cannot simply name an order's state or a lot's state.

Both are ``StrEnum``: the text written into logs, reports, signal details and JSON is the
member's value, the same words as before they were enums.
"""

from __future__ import annotations

import enum


class Verdict(enum.StrEnum):
    """What became of an order, when the answer is not one of its states (``OrderState``)."""

    # The exchange has no such order, and it may not be declared failed yet (promise 4).
    MISSING = "missing"
    # The exchange did not answer (timeout, 5xx, rate limit), or its answer is still to come:
    # a lookup task is scheduled.
    UNKNOWN = "unknown"
    GONE = "gone"  # the ledger has no such order (any more)
    FOREIGN = "foreign"  # not ours, or ours but not adoptable: canceled on the exchange
    CONFLICT = "conflict"  # the news contradicts a terminal state the ledger holds: not applied
    INVALID = "invalid"  # an order update message that cannot be read: dropped


class ExitResult(enum.StrEnum):
    """What an attempt to sell a lot did (``worker.services.sell``, ``worker.services.exits``)."""

    EXIT_PLACED = "exit_placed"  # an exit at the best bid was sent (or its answer is unknown)
    TAKE_PROFIT_PLACED = "take_profit_placed"  # reconciliation placed the missing take-profit
    EXITING = "exiting"  # an exit at or below the bid already rests on the exchange
    RESTING = "resting"  # the lot's take-profit rests and its time exit is not due
    SOLD_MEANWHILE = "sold_meanwhile"  # a resting sell filled while its cancel was confirmed
    DUST = "dust"  # what remained was below minSz: the lot closed, nothing to sell
    CLOSED = "closed"  # the lot was closed (or gone) already
    EXIT_REJECTED = "exit_rejected"  # the exchange refused the exit; the lot stays open
    NEEDS_ATTENTION = "needs_attention"  # refused too often: an operator settles the lot


# What ``exit_lot`` returns when the lot is taken care of; anything else is a failed sell.
EXIT_DONE = frozenset(
    {
        ExitResult.CLOSED,
        ExitResult.EXITING,
        ExitResult.SOLD_MEANWHILE,
        ExitResult.DUST,
        ExitResult.EXIT_PLACED,
    }
)
