"""OKX v5, at the edge: the adapter of the exchange port and the protocol it speaks.

- ``adapter``: ``OkxExchange``, the ``worker.exchange.port.Exchange`` of OKX spot;
- ``rest``: the signed REST client; ``signing``: REST and websocket login signatures;
- ``errors``: OKX codes and HTTP statuses -> the tree of ``worker.domain.errors``;
- ``ratelimit``: OKX's published REST limits, paced client-side;
- ``parse``: OKX JSON -> the port's types and ``InstrumentRules`` (the feed uses it too);
- ``keepalive``: ping, pong and reconnect backoff, shared by the feed and the orders stream;
- ``private_stream``: the private ``orders`` channel (``python -m worker.orders_stream``).

Imports point inward only: to ``worker.exchange.port``, ``worker.domain`` and leaf utilities
(``worker.logs``, ``worker.task_names``); never to the Celery app, the tasks, the services or
the ledger. Whatever a process needs from those (publishing a task, metrics, alerts) its
entry point passes in. This module imports nothing, so that the simulator can use
``signing`` alone.
"""
