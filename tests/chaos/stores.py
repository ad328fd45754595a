"""Private Redis and PostgreSQL servers that the soak may restart at will.

Other test runs share the machine's servers, so the soak never touches them: it starts its own
``redis-server`` and its own PostgreSQL cluster on free loopback ports. PostgreSQL refuses to
run as root, so as root the cluster is created and run as the ``postgres`` user (``runuser``);
its data directory lives in a private temporary directory that user can reach (pytest's
``tmp_path`` sits under a root-only folder).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

REDIS_SERVER = "/usr/bin/redis-server"
DATABASE = "limitflow"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    """A ``redis-server`` with an append-only file: a restart keeps queued messages, as a
    production broker would."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        argv = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--logfile", "redis.log", "--daemonize", "no",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError), self.client() as client:
                if client.ping():
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.dir / 'redis.log'}")
            time.sleep(0.1)
        raise RuntimeError("redis-server did not answer within 30 s")

    def stop(self) -> None:
        """SHUTDOWN (the append-only file is flushed), then wait for the process."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(redis.RedisError), self.client() as client:
            client.shutdown()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """A PostgreSQL cluster of our own: ``initdb``, ``pg_ctl start``/``stop``/restart."""

    def __init__(self, bindir: Path, as_user: list[str], base: Path, uid: int, gid: int) -> None:
        self.bindir = bindir
        self.as_user = as_user
        self.base = base
        self.data = base / "data"
        self.log = base / "postgres.log"
        self.port = free_port()
        self.uid, self.gid = uid, gid

    @classmethod
    def create(cls) -> tuple[PrivatePostgres | None, str]:
        """A new, initialised cluster, or ``(None, why not)``."""
        bindir = _pg_bindir()
        if bindir is None:
            return None, "no initdb binary (install postgresql)"
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                return None, "running as root and there is no postgres user to run the server"
            if shutil.which("runuser") is None:
                return None, "running as root and runuser is missing"
            as_user = ["runuser", "-u", "postgres", "--"]
            uid, gid = entry.pw_uid, entry.pw_gid
        else:
            as_user, uid, gid = [], os.getuid(), os.getgid()
        base = Path(tempfile.mkdtemp(prefix="limitflow-chaos-pg-"))
        os.chown(base, uid, gid)
        pg = cls(bindir, as_user, base, uid, gid)
        try:
            pg._run(
                "initdb", "-D", str(pg.data), "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--no-sync",
            )  # fmt: skip
        except RuntimeError as exc:
            shutil.rmtree(base, ignore_errors=True)
            return None, str(exc)
        return pg, ""

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        argv = [*self.as_user, str(self.bindir / tool), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-500:]}")

    @property
    def server_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200 -c shared_buffers=32MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")  # fmt: skip

    def create_database(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def stop(self, mode: str = "fast") -> None:
        """``fast`` disconnects clients and shuts down cleanly; ``immediate`` is a crash (the
        next start recovers from the WAL)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str, down_seconds: float) -> None:
        self.stop(mode)
        time.sleep(down_seconds)
        try:
            self.start()
        except RuntimeError:  # e.g. the port taken meanwhile by a client's ephemeral socket
            time.sleep(2)
            self.start()

    def destroy(self, keep_log_in: Path | None = None) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        if keep_log_in is not None and self.log.exists():
            with contextlib.suppress(OSError):
                shutil.copy(self.log, keep_log_in / "postgres.log")
        shutil.rmtree(self.base, ignore_errors=True)
