"""RabbitMQ (``amqp://``) as the broker: quorum queues, publisher confirms, no visibility timeout.

Why each choice (the Redis settings in ``worker.app`` stay as they are):

- Redelivery needs no timer. RabbitMQ hands an unacknowledged message back to the queue the
  moment the channel that holds it closes, and the kernel closes a ``kill -9``'d worker's
  socket at once; with ``task_acks_late`` + ``task_reject_on_worker_lost`` (set for every
  broker) the message is then delivered to the next worker within milliseconds, not after a
  Redis-style ``visibility_timeout``. That option means nothing to this transport and is not
  set, so a slow task is never delivered twice while it still runs. A worker that hangs
  without dying keeps its message until RabbitMQ's ``consumer_timeout`` (30 minutes by default)
  closes its channel; no task here runs for more than seconds.
- Quorum queues (``x-queue-type: quorum``): replicated and fsynced before a publish is
  confirmed, so a queued sell or order update survives a broker restart or the loss of a node.
  They need RabbitMQ 3.8 or newer (``server_queue_type`` asks the server; anything else gets
  classic queues). They refuse global QoS, so ``worker_detect_quorum_queues`` makes the worker
  use per-consumer prefetch instead; with ``worker_prefetch_multiplier=1`` that is the same
  "one message per pool process" as before.
- ETA and countdown tasks (order verification after 2, 5 and 10 s; sell retries) cannot be
  held in a worker's prefetch on quorum queues (the prefetch count is static there). Celery's
  native delayed delivery parks them in ``celery_delayed_*`` quorum queues and routes them back
  when due; it works through a topic exchange only, hence ``task_default_exchange_type``.
  RabbitMQ 4 drops (or dead-letters) a quorum-queue message after 20 redeliveries: only a
  message that killed its worker twenty times gets there, and reconciliation settles whatever
  it was about.
- Publisher confirms: ``send_task`` returns only once the broker has the message (for a quorum
  queue, once a majority has written it). Without them a signal the broker refused, or held
  when it crashed, would vanish with no error at the producer. The cost is one broker round
  trip plus the broker's disk flush per publish: 1.5-5 ms on the test machine (README, "Brokers").
"""

from __future__ import annotations

from typing import Any

from kombu.connection import Connection
from kombu.exceptions import ChannelError, OperationalError
from kombu.exceptions import ConnectionError as AmqpConnectionError

AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")
QUORUM_SINCE = (3, 8)  # RabbitMQ release that introduced quorum queues
PROBE_TIMEOUT_SECONDS = 3.0
_Connection: Any = Connection  # kombu is untyped


def is_amqp(url: str) -> bool:
    return url.startswith(AMQP_SCHEMES)


def server_queue_type(url: str) -> str:
    """Ask the broker which queue type it offers: ``quorum`` on RabbitMQ 3.8+, else ``classic``.

    An unreachable broker answers ``quorum``: every supported RabbitMQ has it, and the process
    reports the unreachable broker itself when it connects for real.
    """
    try:
        with _Connection(url, connect_timeout=PROBE_TIMEOUT_SECONDS) as conn:
            conn.ensure_connection(max_retries=0)  # no retry loop: one attempt, then decide
            props = conn.connection.server_properties
    except (OSError, OperationalError, ChannelError, AmqpConnectionError):
        return "quorum"
    return queue_type_for(props)


def queue_type_for(server_properties: dict[str, Any]) -> str:
    product = server_properties.get("product", b"")
    version = server_properties.get("version", b"")
    product = product.decode() if isinstance(product, bytes) else str(product)
    version = version.decode() if isinstance(version, bytes) else str(version)
    if product != "RabbitMQ":
        return "classic"
    numbers = []
    for part in version.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits) if digits else 0)
    return "quorum" if tuple(numbers) >= QUORUM_SINCE else "classic"


def amqp_config(queue_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(broker_transport_options, other Celery settings)`` for a RabbitMQ broker."""
    transport = {"confirm_publish": True}
    # The alerts' queue (``notify``) is created on first use: the same type as the rest.
    extra: dict[str, Any] = {
        "task_default_queue_type": queue_type,
        "task_create_missing_queue_type": queue_type,
    }
    if queue_type == "quorum":
        extra.update(
            task_default_exchange_type="topic",
            worker_detect_quorum_queues=True,
            broker_native_delayed_delivery_queue_type="quorum",
        )
    return transport, extra
