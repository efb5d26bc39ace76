"""The sd_notify conversation: the real `storegw run` talking to a test NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import uuid
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from gateway.systemd import Notifier, SystemdService, build, status_line, watchdog_interval
from tests.daemon_proc import Proc

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from gateway.services import ServiceContext

CONFIG = """\
gateway: {{store: s1, id: g1, state_dir: {state}, shutdown_timeout: 5s}}
aggregation: {{window: 1s}}
devices:
  - {{id: meter-a, driver: sim_meter, interval: 100ms}}
"""

# The real CLI, plus one test hook: SIGUSR1 blocks the main thread (the event loop) for
# BLOCK_S seconds, bracketed by two marker datagrams sent synchronously from that thread,
# so whatever arrives between them was sent while the loop was blocked.
RUNNER = """\
import os, signal, socket, sys, time
from gateway.cli import main

def _mark(text):
    addr = os.environ["NOTIFY_SOCKET"]
    addr = "\\0" + addr[1:] if addr.startswith("@") else addr
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(text.encode(), addr)

def _block(*_):
    _mark("TEST=blocked")
    time.sleep(float(os.environ["BLOCK_S"]))
    _mark("TEST=unblocked")

signal.signal(signal.SIGUSR1, _block)
sys.exit(main(sys.argv[1:]))
"""


class NotifySocket:
    """A datagram socket standing in for systemd's notify socket; records every message."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.0)
        self.messages: list[str] = []
        self._new = asyncio.Event()
        self._task = asyncio.create_task(self._read(), name="test:notify-reader")

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 65536)
            self.messages.append(data.decode())
            self._new.set()

    async def wait_for(self, text: str, after: int = 0, timeout: float = 15.0) -> int:
        """Index of the first message from `after` on containing `text`."""
        deadline = time.monotonic() + timeout
        while True:
            for i, msg in enumerate(self.messages[after:], after):
                if text in msg.split("\n"):
                    return i
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} never came; got {self.messages[-20:]}")
            self._new.clear()
            try:
                async with asyncio.timeout(left):
                    await self._new.wait()
            except TimeoutError:
                pass

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.sock.close()


async def _start(tmp_path: Path, address: str, watchdog_usec: int) -> Proc:
    cfg = tmp_path / "storegw.yaml"
    cfg.write_text(CONFIG.format(state=tmp_path / "state"))
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "NOTIFY_SOCKET": address,
        "WATCHDOG_USEC": str(watchdog_usec),
        "BLOCK_S": "1.0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(runner),
        "run",
        "-c",
        str(cfg),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    return Proc(proc)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[NotifySocket, Proc]]:
    """A daemon pinging every 50 ms on an abstract-namespace notify socket."""
    notify = NotifySocket(f"@storegw-test-{uuid.uuid4().hex}")
    p = await _start(tmp_path, notify.address, watchdog_usec=100_000)
    yield notify, p
    if p.proc.returncode is None:
        p.proc.kill()
        await p.finish()
    await notify.close()


async def test_ready_then_watchdog_then_stopping(daemon: tuple[NotifySocket, Proc]) -> None:
    notify, p = daemon
    ready = await notify.wait_for("READY=1")
    assert not any("WATCHDOG=1" in m for m in notify.messages[:ready])  # nothing before READY
    assert any(line.startswith("STATUS=") for line in notify.messages[ready].split("\n"))
    # READY comes after start-up finished: the devices were started and the log says so.
    await p.wait_for("running: store s1")
    i = ready
    for _ in range(3):
        i = await notify.wait_for("WATCHDOG=1", after=i + 1)
    p.proc.send_signal(signal.SIGHUP)
    await notify.wait_for("STATUS=console output (no mqtt) · devices 1 ok · 1 reload", after=ready)
    p.proc.send_signal(signal.SIGTERM)
    await notify.wait_for("STOPPING=1", after=i)
    assert await p.finish() == 0


async def test_no_watchdog_while_the_event_loop_is_blocked(
    daemon: tuple[NotifySocket, Proc],
) -> None:
    notify, p = daemon
    ready = await notify.wait_for("READY=1")
    await notify.wait_for("WATCHDOG=1", after=ready + 1)
    p.proc.send_signal(signal.SIGUSR1)
    blocked = await notify.wait_for("TEST=blocked", after=ready)
    unblocked = await notify.wait_for("TEST=unblocked", after=blocked)
    # 1 s of blocking is 20 watchdog periods: not one ping may come from inside it.
    assert all("WATCHDOG=1" not in m for m in notify.messages[blocked + 1 : unblocked])
    await notify.wait_for("WATCHDOG=1", after=unblocked)  # and it resumes afterwards
    await p.wait_for("The event loop was blocked for")
    p.proc.send_signal(signal.SIGTERM)
    assert await p.finish() == 0


async def test_a_file_system_notify_socket_without_watchdog(tmp_path: Path) -> None:
    notify = NotifySocket(str(tmp_path / "notify.sock"))
    p = await _start(tmp_path, notify.address, watchdog_usec=0)
    try:
        ready = await notify.wait_for("READY=1")
        p.proc.send_signal(signal.SIGTERM)
        stopping = await notify.wait_for("STOPPING=1", after=ready)
        assert await p.finish() == 0
        assert not any("WATCHDOG=1" in m for m in notify.messages[: stopping + 1])
    finally:
        if p.proc.returncode is None:
            p.proc.kill()
            await p.finish()
        await notify.close()


# -- units ------------------------------------------------------------------------------


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process_only() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert watchdog_interval({"WATCHDOG_USEC": "8", "WATCHDOG_PID": "2"}, pid=2) == 4e-6
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({}) is None


def test_not_started_by_systemd_means_no_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert build(cast("ServiceContext", SimpleNamespace())) is None
    assert Notifier.from_env({"NOTIFY_SOCKET": "relative/path"}) is None
    assert Notifier.from_env({"NOTIFY_SOCKET": "@abstract"}) is not None


def test_a_missing_socket_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(str(tmp_path / "gone.sock"))
    assert notifier.send("WATCHDOG=1") is False
    assert notifier.send("WATCHDOG=1") is False
    notifier.close()
    assert len([r for r in caplog.records if "Cannot notify systemd" in r.message]) == 1


class _Recorder(Notifier):
    def __init__(self) -> None:
        super().__init__("@unused")
        self.sent: list[tuple[str, ...]] = []

    def send(self, *lines: str) -> bool:
        self.sent.append(lines)
        return True


def _service(alive: list[bool], status: dict[str, Any]) -> tuple[SystemdService, _Recorder]:
    ctx = SimpleNamespace(core_alive=lambda: alive[0], status=lambda: status)
    rec = _Recorder()
    return SystemdService(cast("ServiceContext", ctx), rec, watchdog=1.0), rec


def test_no_watchdog_when_a_core_task_died() -> None:
    alive = [True]
    service, rec = _service(alive, {"devices": []})
    service.tick()
    alive[0] = False
    service.tick()
    service.tick()
    assert len(rec.sent) == 1 and rec.sent[0][0] == "WATCHDOG=1"  # only the healthy tick
    assert service.pings == 1 and service.skipped == 2


def test_status_line_reads_like_a_sentence() -> None:
    status = {
        "uplink": {"state": "offline", "last_error": "connection refused"},
        "outbox": {"depth": {"business": 3, "telemetry": 9}},
        "devices": [{"state": "ok"}, {"state": "failed"}, {"state": "ok"}],
        "gateway": {"reloads": 2},
    }
    assert status_line(status) == (
        "uplink offline (connection refused) · devices 2 ok, 1 failed · outbox 12 queued"
        " · 2 reloads"
    )
    assert status_line({}) == "console output (no mqtt) · devices none"
