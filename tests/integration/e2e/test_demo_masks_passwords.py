"""The demo prints which stores it runs on, never their passwords."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests import stores
from tests.processes import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PASSWORD = "hunter2-Zq9"


def with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{PASSWORD}@{host}"


def test_the_demo_never_prints_a_store_password(tmp_path: Path) -> None:
    db = stores.create_pg_database()  # the test server trusts loopback: any password works
    env = {
        **os.environ,
        "DATABASE_URL": with_password(db),
        # Nothing listens there: the demo prints its stores, then waits for the workers.
        "CELERY_BROKER_URL": f"redis://:{PASSWORD}@127.0.0.1:9/0",
        "CELERY_RESULT_BACKEND": f"redis://:{PASSWORD}@127.0.0.1:9/1",
    }
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "demo"), "--home", str(tmp_path / "demo"), "--minutes", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("demo: broker"):
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
        seen.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
        stores.drop_pg_database(db)
    out = "".join(seen)
    assert "demo: database postgresql://postgres:***@" in out, out
    assert "demo: broker redis://:***@127.0.0.1:9/0" in out, out
    assert PASSWORD not in out
