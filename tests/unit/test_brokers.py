"""Broker configuration: Redis keeps its visibility timeout; RabbitMQ gets quorum queues."""

from __future__ import annotations

import importlib
import socket
import time

import pytest

from tests import builders
from worker.amqp_broker import queue_type_for, server_queue_type
from worker.app import VISIBILITY_TIMEOUT_SECONDS, celery_config

app_module = importlib.import_module("worker.app")  # the package attribute is the Celery app
AMQP = "amqp://guest:guest@rabbit.example:5672/limitflow"


def amqp_config_for(monkeypatch: pytest.MonkeyPatch, queue_type: str) -> dict[str, object]:
    asked: list[str] = []

    def fake_probe(url: str) -> str:
        asked.append(url)
        return queue_type

    monkeypatch.setattr(app_module, "server_queue_type", fake_probe)
    config = celery_config(builders.make_settings(CELERY_BROKER_URL=AMQP))
    assert asked == [AMQP]
    return config


def test_redis_keeps_its_visibility_timeout() -> None:
    config = celery_config(builders.make_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/0"))
    assert config["broker_transport_options"] == {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS}
    assert "task_default_queue_type" not in config


def test_rabbitmq_gets_quorum_queues_confirms_and_no_visibility_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = amqp_config_for(monkeypatch, "quorum")
    assert config["broker_transport_options"] == {"confirm_publish": True}
    assert config["task_default_queue_type"] == "quorum"
    assert config["worker_detect_quorum_queues"] is True  # per-consumer QoS, not global
    # Countdowns need native delayed delivery, which needs a topic exchange.
    assert config["task_default_exchange_type"] == "topic"
    assert config["broker_native_delayed_delivery_queue_type"] == "quorum"
    assert config["task_acks_late"] is True and config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1


def test_rabbitmq_without_quorum_support_falls_back_to_classic_queues(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = amqp_config_for(monkeypatch, "classic")
    assert config["task_default_queue_type"] == "classic"
    assert config["broker_transport_options"] == {"confirm_publish": True}
    assert "task_default_exchange_type" not in config  # Celery's direct default


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"product": "RabbitMQ", "version": "3.10.8"}, "quorum"),
        ({"product": b"RabbitMQ", "version": b"4.1.0"}, "quorum"),
        ({"product": "RabbitMQ", "version": "3.8.0"}, "quorum"),
        ({"product": "RabbitMQ", "version": "3.7.28"}, "classic"),
        ({"product": "LavinMQ", "version": "2.0.0"}, "classic"),
        ({}, "classic"),
    ],
)
def test_the_server_decides_the_queue_type(props: dict[str, object], expected: str) -> None:
    assert queue_type_for(props) == expected


def test_an_unreachable_broker_is_probed_once_without_waiting() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    assert server_queue_type(f"amqp://guest:guest@127.0.0.1:{port}//") == "quorum"
    assert time.monotonic() - started < 1.0
