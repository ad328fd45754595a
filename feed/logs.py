"""Structured logs for the feed: an event name plus ``key=value`` fields (or JSON lines)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

logger = logging.getLogger("limitflow.feed")


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with ``fields``."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"lf_event": event, "lf_fields": fields})


def _fmt(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "='):
        return '"' + text.replace('"', '\\"') + '"'
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        event = getattr(record, "lf_event", None)
        if event is None:
            text = f"{ts}Z {record.levelname.lower()} {record.name}: {record.getMessage()}"
        else:
            fields = getattr(record, "lf_fields", {})
            pairs = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
            text = f"{ts}Z {record.levelname.lower()} {event} {pairs}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "event": getattr(record, "lf_event", record.getMessage()),
        }
        doc.update(getattr(record, "lf_fields", {}))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    """Send the feed's logs to stderr as text (``key=value``) or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("limitflow")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class RateLimitedLog:
    """Log an event at most once per ``interval`` seconds per key, with the suppressed count.

    Keys come from a small fixed vocabulary (bad-input reasons), so the table stays bounded.
    """

    def __init__(self, interval: float = 10.0, max_keys: int = 64) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, key: str, event: str, now: float, **fields: Any) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        if last is None and len(self._last) >= self.max_keys:
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        log_event(event, logging.WARNING, **fields, suppressed=suppressed)
        return True
