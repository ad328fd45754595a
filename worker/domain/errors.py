"""The error tree of Limitflow.

Every error the engine raises on purpose descends from ``LimitflowError``. Callers decide what
to do from the branch alone::

    LimitflowError
    +-- ConfigError                 bad settings or strategy file: fix the configuration
    +-- InvalidSignal               a signal message that cannot be executed: record and drop
    +-- IllegalTransition           an order event the lifecycle forbids: log, never apply
    +-- CommandRefused              an operator command that does not fit the ledger: say why
    +-- ExchangeError               anything the exchange port raises
        +-- Retryable               try again later; the order's state is not known to be final
        |   +-- RateLimited         HTTP 429 / 50011: back off
        |   +-- ExchangeUnavailable 50001, 50013, a 5xx with an OKX body, maintenance
        |   +-- StateUnknown        timeout, dropped connection, unreadable body, 408/425/499,
        |                           "system error", "order timed out", any code we do not
        |                           know: the request may have landed
        +-- Fatal                   the exchange said no: retrying the same request cannot help
        |   +-- OrderRejected       placement refused (price, size, balance, instrument)
        |   |   +-- InsufficientFunds
        |   +-- InvalidInstrument   unknown or suspended instrument
        |   +-- RequestExpired      arrived after its expTime: the exchange did not process it
        |   +-- AuthenticationError key, signature, timestamp or passphrase refused
        +-- DuplicateClientOrderId  51016: an order with this clOrdId is pending: look it up
        +-- OrderNotFound           51603: the exchange explicitly has no such order
        +-- CancelRejected          51400/51410: already filled, canceled or canceling

``DuplicateClientOrderId``, ``OrderNotFound`` and ``CancelRejected`` are answers, not failures:
each one tells the caller a fact about the order and has its own handling.
"""

from __future__ import annotations


class LimitflowError(Exception):
    """Root of every error Limitflow raises on purpose."""


class ConfigError(LimitflowError):
    """The configuration is invalid; the message says which setting and why."""


class InvalidSignal(LimitflowError):
    """A signal message is malformed or cannot be executed."""


class IllegalTransition(LimitflowError):
    """An order event that the lifecycle table forbids."""


class CommandRefused(LimitflowError):
    """An operator command that does not apply to the ledger as it is; nothing was changed."""


class ExchangeError(LimitflowError):
    """Anything the exchange port raises. ``code`` is the venue's code when it gave one."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class Retryable(ExchangeError):
    """Try again later; the outcome of the request is not final."""


class RateLimited(Retryable):
    """The venue asked us to slow down (HTTP 429 or code 50011)."""


class ExchangeUnavailable(Retryable):
    """The venue answered with a server error or is under maintenance."""


class StateUnknown(Retryable):
    """No answer (timeout, dropped connection): the request may or may not have landed."""


class Fatal(ExchangeError):
    """The venue refused the request; sending it again cannot succeed."""


class OrderRejected(Fatal):
    """The venue refused to place the order."""


class InsufficientFunds(OrderRejected):
    """Not enough balance for the order."""


class InvalidInstrument(Fatal):
    """Unknown, suspended or not tradable instrument."""


class RequestExpired(Fatal):
    """The request reached the venue after its deadline (``expTime``) and was not processed."""


class AuthenticationError(Fatal):
    """The venue refused our credentials or signature."""


class DuplicateClientOrderId(ExchangeError):
    """An order with this clOrdId is already pending on the venue: look it up."""


class OrderNotFound(ExchangeError):
    """The venue explicitly says it has no such order."""


class CancelRejected(ExchangeError):
    """The venue refused a cancel: the order is already filled, canceled or being canceled."""
