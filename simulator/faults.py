"""Injected faults for REST operations, armed through ``POST /_sim/faults``."""

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


@dataclass
class Fault:
    op: str
    mode: str
    times: int  # how many requests it still hits; negative = until cleared
    seconds: float


class Faults:
    def __init__(self) -> None:
        self.rules: list[Fault] = []

    def add(self, op: str, mode: str, times: int = 1, seconds: float = 0.0) -> Fault:
        if op not in OPS:
            raise ValueError(f"op must be one of {sorted(OPS)}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}")
        if seconds <= 0:
            seconds = 1.0 if mode == "latency" else 120.0
        fault = Fault(op, mode, int(times), float(seconds))
        self.rules.append(fault)
        return fault

    def take(self, op: str) -> Fault | None:
        """The first armed fault for ``op`` (or ``any``), consuming one of its uses."""
        for fault in self.rules:
            if fault.op in (op, "any"):
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.rules.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self.rules.clear()
