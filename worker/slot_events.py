"""Cross-worker cache invalidation: "this slot is free now" over Redis pub/sub.

Without Redis (the embedded default) this is a no-op and caches rely on their TTL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from worker.logs import log_event

CHANNEL = "limitflow:slot-freed"
ALL = "*"

log = logging.getLogger("limitflow.slot_events")


class SlotEvents:
    """Publish freed slots, and deliver other workers' announcements to ``on_freed``."""

    def __init__(self, redis_url: str | None) -> None:
        self._url = redis_url
        self._client: object | None = None
        self._listener: threading.Thread | None = None
        self._lock = threading.Lock()

    def _redis(self) -> object | None:
        if self._url is None:
            return None
        if self._client is None:
            self._client = redis.Redis.from_url(self._url, socket_timeout=2)
        return self._client

    def publish(self, inst_id: str, strategy: str) -> None:
        self._publish(f"{inst_id}|{strategy}")

    def publish_all(self) -> None:
        self._publish(ALL)

    def _publish(self, payload: str) -> None:
        client = self._redis()
        if client is None:
            return
        try:
            client.publish(CHANNEL, payload)  # type: ignore[attr-defined]
        except Exception as exc:
            log_event(log, "slot_events.publish_failed", level=logging.WARNING, error=str(exc))

    def listen(self, on_freed: Callable[[tuple[str, str] | None], None]) -> None:
        """Start (once per process) a daemon thread calling ``on_freed(slot or None)``."""
        if self._url is None:
            return
        with self._lock:
            if self._listener is not None and self._listener.is_alive():
                return
            self._listener = threading.Thread(
                target=self._run, args=(on_freed,), name="slot-events", daemon=True
            )
            self._listener.start()

    def _run(self, on_freed: Callable[[tuple[str, str] | None], None]) -> None:
        assert self._url is not None
        while True:
            try:
                client = redis.Redis.from_url(self._url)
                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(CHANNEL)
                for message in pubsub.listen():
                    data = message.get("data")
                    text = data.decode() if isinstance(data, bytes) else str(data)
                    if text == ALL:
                        on_freed(None)
                    elif "|" in text:
                        inst_id, strategy = text.split("|", 1)
                        on_freed((inst_id, strategy))
            except Exception as exc:
                log_event(log, "slot_events.listen_failed", level=logging.WARNING, error=str(exc))
                time.sleep(1.0)
