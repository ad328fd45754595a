"""Faults at random, from one seed: which fault, when, where and for how long.

Kinds are dealt from a shuffled deck (every kind once per deck, then a new shuffle), so even a
short run injects each kind; the gaps between faults are exponential. Faults that last (a
process down, an instrument suspended) schedule their own end. ``finish`` ends every fault
still in force, so that the system can settle before the invariants are checked.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.control import SimControl
from tests.chaos.cluster import Cluster
from tests.chaos.stores import PrivatePostgres, PrivateRedis

KINDS = (
    "kill_worker",
    "kill_orders_stream",
    "restart_redis",
    "restart_postgres",
    "late_placement",
    "accept_then_timeout",
    "http_5xx_burst",
    "http_429_burst",
    "suspend_instrument",
    "duplicate_pushes",
    "drop_pushes",
)
BURST_OPS = ("place_order", "get_order", "cancel_order", "orders_pending", "any")


@dataclass(order=True)
class _Later:
    due: float
    seq: int
    what: str = field(compare=False)
    action: Callable[[], None] = field(compare=False)


@dataclass
class FaultInjector:
    rng: random.Random
    cluster: Cluster
    ctl: SimControl
    redis: PrivateRedis
    postgres: PrivatePostgres | None
    instruments: list[str]
    pending_timeout: int
    sync_interval: int
    mean_gap: float = 6.0
    say: Callable[[str], None] = print
    counts: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    _later: list[_Later] = field(default_factory=list)
    _deck: list[str] = field(default_factory=list)
    _seq: int = 0
    _suspended: set[str] = field(default_factory=set)

    @property
    def kinds(self) -> tuple[str, ...]:
        if self.postgres is None:
            return tuple(k for k in KINDS if k != "restart_postgres")
        return KINDS

    def run(self, seconds: float, on_tick: Callable[[], None] = lambda: None) -> None:
        """Inject faults for ``seconds``; ``on_tick`` runs about every second (progress)."""
        end = time.monotonic() + seconds
        next_fault = time.monotonic() + self.rng.uniform(1, self.mean_gap)
        next_tick = time.monotonic()
        while time.monotonic() < end:
            self._run_due(time.monotonic())
            for name in self.cluster.supervise():
                self.say(f"{name} exited on its own; restarted")
            if time.monotonic() >= next_fault:
                self.inject(self._deal())
                next_fault = time.monotonic() + self.rng.expovariate(1 / self.mean_gap)
            if time.monotonic() >= next_tick:
                on_tick()
                next_tick += 1.0
            time.sleep(0.1)

    def finish(self, keep_suspended: str | None = None) -> None:
        """End every fault still in force: restart what is down, clear the simulator's faults,
        make every instrument live but ``keep_suspended`` (a suspension that lasts: the rest
        of the engine must settle all the same)."""
        while self._later:
            self._pop().action()
        self.ctl.clear_faults()
        for inst_id in self.instruments:
            self.ctl.instrument_state(inst_id, "suspend" if inst_id == keep_suspended else "live")
        self._suspended = {keep_suspended} if keep_suspended else set()

    # Scheduling ----------------------------------------------------------------------------

    def _deal(self) -> str:
        if not self._deck:
            self._deck = list(self.kinds)
            self.rng.shuffle(self._deck)
        return self._deck.pop()

    def _after(self, seconds: float, what: str, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._later, _Later(time.monotonic() + seconds, self._seq, what, action))

    def _pop(self) -> _Later:
        return heapq.heappop(self._later)

    def _run_due(self, now: float) -> None:
        while self._later and self._later[0].due <= now:
            self._pop().action()

    # The faults ----------------------------------------------------------------------------

    def inject(self, kind: str) -> None:
        detail = getattr(self, f"_{kind}")()
        if detail is None:
            self.skipped[kind] += 1
            return
        self.counts[kind] += 1
        self.say(f"{kind} {detail}")

    def _down_for(self) -> float:
        return self.rng.uniform(1.0, 8.0)

    def _kill_worker(self) -> str | None:
        alive = [n for n in self.cluster.worker_names if self.cluster.current[n].alive]
        if not alive:
            return None
        name = self.rng.choice(alive)
        self.cluster.kill9(name)
        down = self._down_for()
        self._after(down, name, lambda: self.cluster.ensure_running(name))
        return f"{name} (kill -9; restart in {down:.1f}s)"

    def _kill_orders_stream(self) -> str | None:
        if not self.cluster.kill9("orders-stream"):
            return None
        down = self._down_for()
        self._after(down, "orders-stream", lambda: self.cluster.ensure_running("orders-stream"))
        return f"(kill -9; restart in {down:.1f}s)"

    def _restart_redis(self) -> str:
        down = self.rng.uniform(0.5, 4.0)
        self.redis.restart(down)
        return f"(down {down:.1f}s)"

    def _restart_postgres(self) -> str | None:
        if self.postgres is None:
            return None
        mode = self.rng.choice(("fast", "immediate"))
        down = self.rng.uniform(0.5, 4.0)
        self.postgres.restart(mode, down)
        return f"(pg_ctl stop -m {mode}, down {down:.1f}s)"

    def _late_placement(self) -> str:
        # Lands after purge_pending could have declared it missing (timeout + one interval).
        seconds = self.pending_timeout + self.sync_interval + self.rng.uniform(2, 8)
        times = self.rng.randint(1, 2)
        self.ctl.fault("place_order", "latency", times=times, seconds=seconds)
        return f"(next {times} placement(s) land after {seconds:.1f}s)"

    def _accept_then_timeout(self) -> str:
        seconds = self.rng.uniform(6, 15)  # past the adapter's 5 s read timeout
        times = self.rng.randint(1, 2)
        self.ctl.fault("place_order", "accept_then_timeout", times=times, seconds=seconds)
        return f"(next {times} placement(s) accepted, answered after {seconds:.1f}s)"

    def _burst(self, mode: str) -> str:
        op = self.rng.choice(BURST_OPS)
        times = self.rng.randint(3, 10)
        self.ctl.fault(op, mode, times=times)
        return f"(op {op}, {times} requests)"

    def _http_5xx_burst(self) -> str:
        return self._burst("http_500")

    def _http_429_burst(self) -> str:
        return self._burst(self.rng.choice(("rate_limit_429", "code_50011")))

    def _suspend_instrument(self) -> str | None:
        free = [i for i in self.instruments if i not in self._suspended]
        if not free:
            return None
        inst_id = self.rng.choice(free)
        seconds = self.rng.uniform(20, 60)
        self.ctl.instrument_state(inst_id, "suspend")
        self._suspended.add(inst_id)

        def resume() -> None:
            self.ctl.instrument_state(inst_id, "live")
            self._suspended.discard(inst_id)

        self._after(seconds, inst_id, resume)
        return f"{inst_id} (for {seconds:.0f}s)"

    def _duplicate_pushes(self) -> str:
        times = self.rng.randint(1, 6)
        self.ctl.push_fault("duplicate", times)
        return f"(next {times} orders pushes sent twice)"

    def _drop_pushes(self) -> str:
        times = self.rng.randint(1, 6)
        self.ctl.push_fault("drop", times)
        return f"(next {times} orders pushes dropped)"
