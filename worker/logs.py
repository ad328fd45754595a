"""Structured logs: an event name plus fields, as ``key=value`` text or JSON lines.

Secrets never reach a line: fields named like secrets are replaced by ``***``, and the
password of any URL, wherever it appears (a field, a plain message, a traceback), is masked
by ``mask_passwords``, the one helper every message that may show a URL goes through.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from decimal import Decimal
from types import TracebackType
from typing import Any

import orjson

_SECRET_HINTS = ("secret", "passphrase", "api_key", "apikey", "password")
_SECRET_KEYS = frozenset({"sign", "signature", "key"})
# scheme://user:password@host: the password runs to the last "@" before whitespace, so a raw
# "@" inside it is masked too.
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):\S*@(?=[^@\s]*(?:\s|$))")
_PLAIN = (int, float, Decimal, bool, type(None))


def mask_passwords(text: str) -> str:
    """Return ``text`` with the password of every URL in it replaced by ``***``
    (``postgresql://trader:***@db/limitflow``, ``redis://:***@cache:6379/0``)."""
    if "://" not in text:
        return text
    return _URL_PASSWORD.sub(r"\1:***@", text)


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in fields.items():
        lowered = key.lower()
        if lowered in _SECRET_KEYS or any(h in lowered for h in _SECRET_HINTS):
            value = "***"
        elif not isinstance(value, _PLAIN):
            text = str(value)  # an exception or a URL object may carry a URL as well
            if "://" in text:
                value = mask_passwords(text)
        out[key] = value
    return out


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with ``fields`` (values that look like secrets are masked)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"lf_event": event, "lf_fields": _clean(fields)})


def _fmt_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "='):
        return '"' + text.replace('"', '\\"') + '"'
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        event = getattr(record, "lf_event", None)
        if event is None:
            message = mask_passwords(record.getMessage())
            text = f"{ts}Z {record.levelname.lower()} {record.name}: {message}"
        else:
            fields = getattr(record, "lf_fields", {})
            pairs = " ".join(f"{k}={_fmt_value(v)}" for k, v in fields.items())
            text = f"{ts}Z {record.levelname.lower()} {event} {pairs}".rstrip()
        if record.exc_info:
            text += "\n" + mask_passwords(self.formatException(record.exc_info))
        return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "event": getattr(record, "lf_event", None) or mask_passwords(record.getMessage()),
            "logger": record.name,
        }
        doc.update(getattr(record, "lf_fields", {}))
        if record.exc_info:
            doc["exc"] = mask_passwords(self.formatException(record.exc_info))
        return orjson.dumps(doc, default=str).decode()


# Libraries that log a line per request at INFO: shown from WARNING unless LOG_LEVEL=DEBUG.
_CHATTY = ("httpx", "httpcore", "urllib3", "websocket", "aiohttp.access")


def configure_logging(
    fmt: str = "text", level: str = "INFO", *, others: str | int | None = "WARNING"
) -> None:
    """Send every log line of the process to stderr in ``fmt`` ("text" or "json").

    One handler on the root logger formats Limitflow's events and everyone else's lines
    (Celery, kombu, httpx, Python warnings), so with ``json`` every line is a JSON object.
    Limitflow's loggers log from ``level``; the others from ``others`` (Celery's ``-l``;
    ``None`` keeps the level set before, e.g. in a worker's pool process).
    An uncaught exception is logged as one line too, never printed as a bare traceback.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    if others is not None:
        root.setLevel(others)
    ours = logging.getLogger("limitflow")
    ours.handlers[:] = []
    ours.setLevel(level)
    ours.propagate = True
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("limitflow").critical(
        "uncaught exception", exc_info=(kind, exc, tb), extra={"lf_event": "process.crashed"}
    )


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return
    thread = args.thread.name if args.thread is not None else "?"
    logging.getLogger("limitflow").error(
        "uncaught exception in a thread",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        extra={"lf_event": "thread.crashed", "lf_fields": {"thread": thread}},
    )
