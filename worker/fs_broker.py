"""The embedded broker: kombu's file-system transport, with messages written atomically.

kombu's own ``_put`` creates ``NAME.QUEUE.msg`` and then writes into it, so a consumer polling
the folder can take the file while it is still empty and fail to decode it (a worker of the
embedded default then dies with ``JSONDecodeError``). Here a message is written to a hidden
``.NAME.QUEUE.msg.part`` file (which consumers skip) and renamed into place when complete;
a rename within one folder is atomic, so a consumer sees whole messages or nothing.

The folders are created when a channel opens, not when the Celery app is built: a command that
only prints its ``--help`` creates nothing.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps

TRANSPORT = "worker.fs_broker:Transport"


class Channel(filesystem.Channel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        options = self.transport_options
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if options.get(key):
                os.makedirs(options[key], exist_ok=True)

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Put a message on ``queue``: write it aside, then rename it into the queue."""
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as out:
                out.write(dumps(payload).encode())  # type: ignore[no-untyped-call]
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
