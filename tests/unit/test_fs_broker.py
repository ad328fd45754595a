"""The embedded broker writes messages atomically, and the app uses it for filesystem://."""

from __future__ import annotations

import threading
from pathlib import Path
from queue import Empty

from kombu import Connection

from tests import builders
from worker.app import celery_config
from worker.fs_broker import TRANSPORT


def _connection(folder: Path) -> Connection:
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "processed_folder": str(folder.parent / "processed"),
        "store_processed": False,
        "control_folder": str(folder.parent / "control"),
    }
    return Connection("filesystem://", transport=TRANSPORT, transport_options=options)


def test_a_message_is_never_visible_half_written(tmp_path: Path) -> None:
    folder = tmp_path / "queue"
    folder.mkdir()
    (tmp_path / "processed").mkdir()
    big = "x" * 200_000
    sent = 300
    received: list[object] = []
    done = threading.Event()

    def produce() -> None:
        with _connection(folder) as conn:
            queue = conn.SimpleQueue("q")
            for n in range(sent):
                queue.put({"n": n, "pad": big})
            queue.close()
        done.set()

    def consume() -> None:
        with _connection(folder) as conn:
            channel = conn.default_channel
            while len(received) < sent:
                try:
                    received.append(channel._get("q"))  # raises on a half-written file
                except Empty:
                    continue

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    produce()
    consumer.join(60)
    assert done.is_set() and len(received) == sent
    assert list(folder.iterdir()) == []  # no partial file left behind


def test_the_app_uses_the_atomic_transport_for_the_file_system_broker(tmp_path: Path) -> None:
    embedded = celery_config(builders.make_settings(LIMITFLOW_HOME=str(tmp_path)))
    assert embedded["broker_url"] == "filesystem://"
    assert embedded["broker_transport"] == TRANSPORT
    redis = celery_config(builders.make_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/0"))
    assert "broker_transport" not in redis
