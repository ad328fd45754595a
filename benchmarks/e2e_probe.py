"""Stage timestamps for ``bench_e2e.py --stages``: where tick to order spends its time.

Loaded only by the benchmark: into the workers with ``celery worker --include
benchmarks.e2e_probe`` and into the feed with ``python -c "...; p.run_feed()"``. It wraps a
few functions (it changes no behaviour) and appends one JSON line per buy task, per published
signal and per received task to ``$LF_PROBE_DIR/probe-PID.jsonl``. Timestamps are epoch
microseconds (``time.time_ns() // 1000``), the clock of the simulator's timeline; all the
processes run on one host, so they compare.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

DIR = os.environ.get("LF_PROBE_DIR", "")
BUY_TASK = "limitflow.process_buy_signal"
_write_lock = threading.Lock()
_files: dict[int, Any] = {}
_local = threading.local()


def _us() -> int:
    return time.time_ns() // 1000


def _write(record: dict[str, Any]) -> None:
    pid = os.getpid()
    with _write_lock:
        out = _files.get(pid)
        if out is None:
            out = _files[pid] = open(f"{DIR}/probe-{pid}.jsonl", "ab", buffering=0)  # noqa: SIM115
        out.write(orjson.dumps({"pid": pid, **record}) + b"\n")


def _event(name: str) -> None:
    events = getattr(_local, "events", None)
    if events is not None:
        events.append((name, _us()))


def _wrap_cm(owner: type, name: str, label: str) -> None:
    original = getattr(owner, name)

    @contextlib.contextmanager
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        _event(f"{label}>")
        with original(self, *args, **kwargs) as value:
            yield value
        _event(f"{label}<")

    setattr(owner, name, wrapper)


def _wrap_call(owner: type, name: str, label: Callable[[tuple[Any, ...]], str]) -> None:
    original = getattr(owner, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        tag = label(args)
        _event(f"{tag}>")
        try:
            return original(self, *args, **kwargs)
        finally:
            _event(f"{tag}<")

    setattr(owner, name, wrapper)


# Workers ---------------------------------------------------------------------------------


def install_worker() -> None:
    _stamp_calls()
    _stamp_sql()
    _stamp_buy_tasks()


def _stamp_calls() -> None:
    """Stamp the ledger's transactions, the slot lock, the rules, HTTP and the runtime."""
    import worker.runtime
    import worker.tasks
    from worker.exchange.okx.rest import OkxRestClient
    from worker.ledger import admission
    from worker.ledger.db import Ledger
    from worker.runtime import Runtime

    _wrap_cm(Ledger, "connect", "tx")  # its exit includes the COMMIT
    _wrap_cm(Ledger, "single_statement", "stmt")
    _wrap_call(Ledger, "lock_slot", lambda a: "lock")
    # PostgreSQL's one-round-trip admission: the slot lock, the intent and its COMMIT.
    fast_admit = admission.fast_admit

    def stamped_fast_admit(*args: Any, **kwargs: Any) -> Any:
        _event("admit>")
        try:
            return fast_admit(*args, **kwargs)
        finally:
            _event("admit<")

    admission.fast_admit = stamped_fast_admit
    _wrap_call(Runtime, "rules", lambda a: "rules")
    _wrap_call(OkxRestClient, "_send", lambda a: f"http {a[0]} {a[1]}")
    build = worker.runtime.get_runtime

    def get_runtime() -> Any:
        _event("runtime>")
        try:
            return build()
        finally:
            _event("runtime<")

    worker.runtime.get_runtime = get_runtime
    worker.tasks.get_runtime = get_runtime


def _stamp_sql() -> None:
    """Stamp every SQL statement, commit and connection checkout."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def _sql_label(statement: str) -> str:
        words = statement.split()
        return "sql " + " ".join(words[:3])[:40]

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        _event(f"{_sql_label(statement)}>")

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        _event(f"{_sql_label(statement)}<")

    @event.listens_for(Engine, "commit")
    def _commit(conn: Any) -> None:
        _event("commit>")

    @event.listens_for(Engine, "engine_connect")
    def _connect(conn: Any) -> None:
        _event("checkout")


def _stamp_buy_tasks() -> None:
    """Record each buy task when received, and its stamps from prerun to postrun."""
    from celery.signals import task_postrun, task_prerun, task_received

    @task_received.connect(weak=False)
    def _received(request: Any = None, **_: Any) -> None:
        if request is not None and request.name == BUY_TASK:
            _write({"kind": "received", "tid": request.id, "us": _us()})

    @task_prerun.connect(weak=False)
    def _prerun(task_id: str = "", task: Any = None, args: Any = (), **_: Any) -> None:
        if task is not None and task.name == BUY_TASK:
            _local.events = [("prerun", _us())]
            _local.tid = task_id
            _local.sig = args[0].get("signal_id") if args and isinstance(args[0], dict) else ""

    @task_postrun.connect(weak=False)
    def _postrun(task: Any = None, **_: Any) -> None:
        events = getattr(_local, "events", None)
        if task is None or task.name != BUY_TASK or events is None:
            return
        events.append(("postrun", _us()))
        _write({"kind": "task", "tid": _local.tid, "sig": _local.sig, "events": events})
        _local.events = None


# Feed ------------------------------------------------------------------------------------


def run_feed() -> None:
    """Run ``python -m feed`` with the feed's stages stamped."""
    from feed.engine import Engine
    from feed.publish import CeleryPublisher

    handle_raw = Engine.handle_raw

    def timed_handle_raw(self: Engine, raw: str | bytes, recv_ms: int = 0) -> Any:
        _local.feed_in = _us()
        return handle_raw(self, raw, recv_ms)

    publish = CeleryPublisher.__call__

    def timed_publish(self: CeleryPublisher, signal: Any) -> None:
        now = _us()
        feed_in = getattr(_local, "feed_in", now)
        _write(
            {
                "kind": "published",
                "sig": signal.signal_id,
                "inst": signal.inst_id,
                "feed_in": feed_in,
                "us": now,
            }
        )
        publish(self, signal)

    send = CeleryPublisher._send  # the broker publish, on the publish thread

    def timed_send(self: CeleryPublisher, task: str, message: dict[str, Any]) -> str:
        begin = _us()
        task_id = send(self, task, message)
        if task == BUY_TASK:
            sig = message.get("signal_id")
            _write({"kind": "sent", "sig": sig, "tid": task_id, "begin": begin, "us": _us()})
        return task_id

    Engine.handle_raw = timed_handle_raw  # type: ignore[method-assign]
    CeleryPublisher.__call__ = timed_publish  # type: ignore[method-assign]
    CeleryPublisher._send = timed_send  # type: ignore[method-assign]
    from feed.__main__ import main

    sys.argv = ["python -m feed"]
    sys.exit(main())


if DIR and "celery" in sys.argv[0]:  # imported by ``celery worker --include``
    install_worker()


# Report ----------------------------------------------------------------------------------


def _first(events: list[list[Any]], name: str, after: int = 0) -> int | None:
    for label, us in events:
        if label == name and us >= after:
            return int(us)
    return None


def stage_report(
    probe_dir: Path, sent_us: dict[str, int], received_us: dict[str, int], insts: list[str]
) -> None:
    """Print each stage's median, p90 and max over the tick-to-order samples, and what the
    first order of each worker process spent inside the task against the others."""
    published: dict[str, dict[str, Any]] = {}
    sent: dict[str, dict[str, Any]] = {}
    got: dict[str, int] = {}
    tasks: dict[str, dict[str, Any]] = {}
    for path in probe_dir.glob("probe-*.jsonl"):
        for line in path.read_bytes().splitlines():
            rec = orjson.loads(line)
            kind = rec["kind"]
            if kind == "published":
                published[rec["inst"]] = rec
            elif kind == "sent":
                sent[rec["sig"]] = rec
            elif kind == "received":
                got[rec["tid"]] = rec["us"]
            elif kind == "task":
                tasks.setdefault(rec["sig"], rec)  # the first run of a signal
    rows: list[dict[str, int]] = []
    details: list[dict[str, float]] = []
    pids: list[int] = []
    for inst in insts:
        pub = published.get(inst)
        snd = sent.get(pub["sig"], {}) if pub else {}
        task = tasks.get(pub["sig"]) if pub else None
        if pub is None or task is None or not snd or inst not in received_us:
            continue
        ev = task["events"]
        # The transaction: the one-round-trip admission, or (when it left the decision to
        # ``try_admit``) the slot lock to the COMMIT.
        lock = _first(ev, "lock>") or _first(ev, "admit>") or 0
        commit = _first(ev, "tx<", lock) if _first(ev, "lock>") else _first(ev, "admit<")
        rows.append(
            {
                "sim": sent_us[inst],
                "feed_in": pub["feed_in"],
                "publish": pub["us"],
                "send_begin": snd["begin"],
                "send_end": snd["us"],
                "received": got.get(snd["tid"], 0),
                "prerun": _first(ev, "prerun") or 0,
                "lock": lock,
                "commit": commit or 0,
                "http": _first(ev, f"{ORDER_HTTP}>") or 0,
                "order": received_us[inst],
                "http_end": _first(ev, f"{ORDER_HTTP}<") or 0,
                "postrun": _first(ev, "postrun") or 0,
            }
        )
        details.append(_details(ev))
        pids.append(task["pid"])
    if not rows:
        print("stages: no complete samples (see the probe files)")
        return
    cold = [pids.index(pid) for pid in dict.fromkeys(pids)]  # each process's first order
    warm = [i for i in range(len(rows)) if i not in cold]
    print(f"\nstages over {len(rows)} samples, ms (first: each worker process's first order)")
    print(f"{'stage':42s} {'median':>7s} {'p90':>7s} {'max':>7s} {'warm':>7s}  first")
    for label, a, b in STAGES:
        values = [(r[b] - r[a]) / 1000 if r[a] and r[b] else float("nan") for r in rows]
        known = [v for v in values if v == v]
        warm_values = [values[i] for i in warm if values[i] == values[i]] or known
        print(
            f"{label:42s} {statistics.median(known):7.2f} {_q(known, 0.9):7.2f}"
            f" {max(known):7.2f} {statistics.median(warm_values):7.2f}  "
            + " ".join(f"{values[i]:.2f}" for i in cold)
        )
    print("\ninside the task (summed per call, ms)        warm median  first")
    for key in sorted({k for d in details for k in d}):
        med = statistics.median([details[i].get(key, 0.0) for i in warm] or [0.0])
        firsts = " ".join(f"{details[i].get(key, 0.0):.2f}" for i in cold)
        print(f"  {key:42s} {med:9.2f}  {firsts}")


ORDER_HTTP = "http POST /api/v5/trade/order"
STAGES = [
    ("ticker push -> feed receives (websocket)", "sim", "feed_in"),
    ("feed: parse + evaluate + signal", "feed_in", "publish"),
    ("publish: hand-off to the publish thread", "publish", "send_begin"),
    ("publish: send (kombu -> Redis)", "send_begin", "send_end"),
    ("broker: Redis -> worker consumer", "send_end", "received"),
    ("pool: consumer -> task starts", "received", "prerun"),
    ("worker before the lock", "prerun", "lock"),
    ("transaction (lock .. commit)", "lock", "commit"),
    ("commit -> HTTP request starts", "commit", "http"),
    ("HTTP: request -> simulator receives", "http", "order"),
    ("total: tick to order", "sim", "order"),
    ("after: order received -> HTTP answer", "order", "http_end"),
    ("after: HTTP answer -> task ends", "http_end", "postrun"),
]


def _details(events: list[list[Any]]) -> dict[str, float]:
    """Durations of the wrapped calls inside one task (summed per label)."""
    out: dict[str, float] = {}
    open_at: dict[str, int] = {}
    for label, us in events:
        if label == "commit>":  # the DBAPI COMMIT runs until the transaction's block exits
            open_at["tx: COMMIT"] = us
        elif label == "tx<" and "tx: COMMIT" in open_at:
            out["tx: COMMIT"] = out.get("tx: COMMIT", 0.0) + (us - open_at.pop("tx: COMMIT")) / 1000
        if label.endswith(">"):
            open_at[label[:-1]] = us
        elif label.endswith("<") and label[:-1] in open_at:
            name = label[:-1]
            out[name] = out.get(name, 0.0) + (us - open_at.pop(name)) / 1000
    return out


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
