"""Passwords inside store URLs never reach a message: configuration errors, logs, printouts."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from worker.domain.errors import ConfigError
from worker.logs import JsonFormatter, TextFormatter, log_event
from worker.settings import load_settings

PASSWORD = "hunter2-Zq9"
URLS = [
    f"postgresql://trader:{PASSWORD}@db.internal:5432/limitflow",
    f"redis://:{PASSWORD}@redis.internal:6379/0",
    f"amqp://trader:{PASSWORD}@rabbit.internal:5672//",
    f"db+postgresql://trader:{PASSWORD}@db.internal/results",
]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"DATABASE_URL": f"mysql://trader:{PASSWORD}@db.internal/limitflow"}, "DATABASE_URL"),
        ({"DATABASE_URL": f"postgres://trader:{PASSWORD}@db/x"}, "DATABASE_URL"),
        # A URL pasted into the wrong setting.
        ({"MAX_ORDER_USDT": f"redis://:{PASSWORD}@redis.internal:6379/0"}, "MAX_ORDER_USDT"),
    ],
)
def test_a_configuration_error_never_shows_a_url_password(
    values: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(values)
    message = str(err.value)
    assert named in message and ":***@" in message  # still says which value was wrong
    assert PASSWORD not in message


def capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"limitflow.test.mask.{id(out)}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, out


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_log_lines_never_show_a_url_password(formatter: logging.Formatter) -> None:
    logger, out = capture(formatter)
    for url in URLS:
        log_event(logger, "store.unreachable", url=url, error=f"cannot connect to {url}: refused")
        log_event(logger, "store.unreachable", error=ConnectionError(f"{url} refused"))
        logger.warning("plain message about %s", url)
        try:
            raise OSError(f"connect {url}")
        except OSError:
            logger.exception("with a traceback")
    text = out.getvalue()
    assert PASSWORD not in text
    assert text.count(":***@") >= 4 * len(URLS)
    if isinstance(formatter, JsonFormatter):
        for line in text.splitlines():
            if line.startswith("{"):
                orjson.loads(line)  # masking keeps every line valid JSON


def test_masking_keeps_what_names_the_store() -> None:
    from worker.logs import mask_passwords

    assert mask_passwords(URLS[0]) == "postgresql://trader:***@db.internal:5432/limitflow"
    assert mask_passwords(URLS[1]) == "redis://:***@redis.internal:6379/0"
    assert mask_passwords("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert mask_passwords("sqlite:////var/lib/limitflow.db") == "sqlite:////var/lib/limitflow.db"
    assert mask_passwords(f"a {URLS[2]} and {URLS[3]}").count("***") == 2
