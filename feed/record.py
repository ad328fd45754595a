"""``--record FILE``: append every received message as a JSON line, and replay such files.

Line format: ``{"recv_ms": <int>, "msg": <the message object>}`` (a frame that is not JSON is
stored as a string). Writes go through a bounded buffer, flushed at least every second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from feed.engine import Engine

BUFFER_BYTES = 1 << 20


class Recorder:
    """Append-only JSONL writer, safe to call from several connection threads."""

    def __init__(self, path: str | Path, flush_every: float = 1.0) -> None:
        self._file = open(path, "ab", buffering=BUFFER_BYTES)  # noqa: SIM115 - closed by close()
        self._lock = threading.Lock()
        self._flush_every = flush_every
        self._last_flush = time.monotonic()
        self.lines = 0

    def write(self, recv_ms: int, msg: Any) -> None:
        line = orjson.dumps({"recv_ms": recv_ms, "msg": msg}, option=orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            self._file.write(line)
            self.lines += 1
            now = time.monotonic()
            if now - self._last_flush >= self._flush_every:
                self._file.flush()
                self._last_flush = now

    def flush(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                self._last_flush = time.monotonic()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()


def read_recording(path: str | Path) -> Iterator[tuple[int, Any]]:
    """``(recv_ms, msg)`` for each line of a recording (unreadable lines are skipped)."""
    with open(path, "rb") as fh:
        for line in fh:
            try:
                doc = orjson.loads(line)
                yield int(doc["recv_ms"]), doc["msg"]
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue


def replay(path: str | Path, engine: Engine) -> int:
    """Feed a recording through ``engine``; return the number of messages replayed."""
    n = 0
    for recv_ms, msg in read_recording(path):
        if isinstance(msg, str):
            if msg != "pong":
                engine.handle_raw(msg, recv_ms)
        else:
            engine.handle(msg, recv_ms)
        n += 1
    return n
