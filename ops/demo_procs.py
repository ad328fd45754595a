"""The demo's child processes: started in their own process groups, logged to files, stopped
with SIGTERM and then SIGKILL, never left behind."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the demo dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One long-running process of the engine."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def text(self) -> str:
        return self.log.read_text("utf-8", "replace") if self.log.exists() else ""

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def terminate(self) -> None:
        """SIGTERM the process itself (a Celery worker then stops its own pool: warm shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # exited between the poll and now
                self.proc.send_signal(signal.SIGTERM)

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the process group (pool processes included)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)


@dataclass
class Children:
    """Every child the demo started, in start order."""

    cwd: Path
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], log: Path) -> Child:
        child = Child(name, list(argv), log)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            child.proc = subprocess.Popen(
                child.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the demo only; it stops the rest
                preexec_fn=_die_with_parent,
            )
        self.children.append(child)
        return child

    def dead(self) -> list[Child]:
        return [c for c in self.children if c.proc is not None and c.proc.poll() is not None]

    def stop(self, names: Sequence[str] | None = None, timeout: float = 15.0) -> None:
        """SIGTERM the chosen children (all by default), SIGKILL what is left after ``timeout``."""
        chosen = [c for c in self.children if names is None or c.name in names]
        for child in chosen:
            child.terminate()
        deadline = time.monotonic() + timeout
        for child in chosen:
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"demo: {child.name} did not stop within {timeout:.0f}s, killing it")
            child.kill_group()
            child.proc.wait(5)


def wait_until(check: Callable[[], bool], timeout: float, children: Children, what: str) -> None:
    """Wait for ``check``; raise ``ChildDied`` if a child exits, ``TimeoutError`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        dead = children.dead()
        if dead:
            raise ChildDied(dead[0])
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class ChildDied(RuntimeError):
    """A child process exited while the demo needed it."""

    def __init__(self, child: Child):
        super().__init__(f"{child.name} exited with code {child.returncode}")
        self.child = child
