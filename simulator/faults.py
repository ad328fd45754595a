"""Injected faults, armed through ``POST /_sim/faults``.

REST faults hit requests of one operation (or ``any`` REST operation). Push faults hit the
private ``orders`` channel (op ``orders_push``): ``drop`` swallows the next pushes, as a lost
websocket frame would, and ``duplicate`` sends each of them twice, as a client that
resubscribes or a venue that retries may see.
"""

from __future__ import annotations

from dataclasses import dataclass

OPS = frozenset(
    {
        "place_order",
        "cancel_order",
        "get_order",
        "orders_pending",
        "orders_history",
        "balance",
        "public",
        "any",
    }
)
MODES = frozenset(
    {"latency", "http_500", "rate_limit_429", "code_50011", "accept_then_timeout", "timeout"}
)
PUSH_OP = "orders_push"
PUSH_MODES = frozenset({"drop", "duplicate"})


@dataclass
class Fault:
    op: str
    mode: str
    times: int  # how many requests (or pushes) it still hits; negative = until cleared
    seconds: float


class Faults:
    def __init__(self) -> None:
        self.rules: list[Fault] = []
        # Pushes of the orders channel that push faults swallowed or sent twice.
        self.pushes_dropped = 0
        self.pushes_duplicated = 0

    def add(self, op: str, mode: str, times: int = 1, seconds: float = 0.0) -> Fault:
        if op == PUSH_OP:
            if mode not in PUSH_MODES:
                raise ValueError(f"mode of {PUSH_OP} must be one of {sorted(PUSH_MODES)}")
        elif op not in OPS:
            raise ValueError(f"op must be one of {sorted(OPS | {PUSH_OP})}")
        elif mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}")
        if seconds <= 0:
            seconds = 1.0 if mode == "latency" else 120.0
        fault = Fault(op, mode, int(times), float(seconds))
        self.rules.append(fault)
        return fault

    def take(self, op: str) -> Fault | None:
        """The first armed fault for ``op`` (``any`` covers REST operations only), consuming
        one of its uses."""
        for fault in self.rules:
            if fault.op == op or (fault.op == "any" and op != PUSH_OP):
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.rules.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self.rules.clear()
