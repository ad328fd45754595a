"""Count the ticker pushes the simulator sends (the demo's "ticks"), on its own websocket."""

from __future__ import annotations

import json
import threading
import time

import websocket


class TickCounter:
    """Subscribe to ``tickers`` for ``inst_ids`` on ``url`` and count pushes in a thread."""

    def __init__(self, url: str, inst_ids: list[str]) -> None:
        self.url = url
        self.inst_ids = inst_ids
        self.count = 0
        self.error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-ticks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except (OSError, websocket.WebSocketException) as exc:
                self.error = str(exc)
                self._stop.wait(1.0)

    def _session(self) -> None:
        ws = websocket.create_connection(self.url, timeout=2)
        try:
            args = [{"channel": "tickers", "instId": i} for i in self.inst_ids]
            ws.send(json.dumps({"op": "subscribe", "args": args}))
            next_ping = time.monotonic() + 10
            while not self._stop.is_set():
                if time.monotonic() >= next_ping:
                    ws.send("ping")
                    next_ping = time.monotonic() + 10
                try:
                    text = ws.recv()
                except websocket.WebSocketTimeoutException:
                    continue
                if isinstance(text, str) and '"data"' in text:
                    self.count += 1
        finally:
            ws.close()
