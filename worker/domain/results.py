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


class SkipReason(enum.StrEnum):
    """Why a buy signal did not become an order (the ``reason`` recorded with it)."""

    # Already recorded: nothing is recorded again (the task's outcome is ``duplicate``).
    DUPLICATE = "duplicate"
    # Under the slot lock, in this order of precedence (``worker.ledger.admission``):
    SLOT_BUSY = "slot_busy"  # an order of the slot is open
    UNSOLD_LOT = "unsold_lot"  # the slot holds a lot not sold yet (or one that needs attention)
    COOLDOWN = "cooldown"  # a buy of the slot bought something within BUY_GUARD_WINDOW_SECONDS
    PAUSED = "paused"  # every buy, or this strategy's, is paused
    EXPIRED = "expired"  # past its expiry (before or while waiting for the lock)
    BELOW_MIN_SIZE = "below_min_size"  # no buy within its budget nets a sellable lot
    RISK_LIMIT = "risk_limit"  # MAX_OPEN_POSITIONS reached, or worth more than MAX_ORDER_USDT
    # Before the lock:
    DISABLED = "disabled"  # the strategy has enabled = false
    CACHED_BUSY = "cached_busy"  # this worker saw the slot busy within its cache's TTL
    INVALID_INSTRUMENT = "invalid_instrument"  # the exchange does not trade the instrument
    # After the task gave up:
    EXCHANGE_ERROR = "exchange_error"  # the exchange kept failing
    INVALID_MESSAGE = "invalid_message"  # the message is no valid signal


# The blockers that a slot's own rows or switches raise, in their order of precedence.
BLOCKERS = (
    SkipReason.DUPLICATE,
    SkipReason.SLOT_BUSY,
    SkipReason.UNSOLD_LOT,
    SkipReason.COOLDOWN,
    SkipReason.PAUSED,
)
# Blockers that say the slot is busy for a while: the worker's cache remembers them.
BUSY = frozenset({SkipReason.SLOT_BUSY, SkipReason.UNSOLD_LOT, SkipReason.COOLDOWN})


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
