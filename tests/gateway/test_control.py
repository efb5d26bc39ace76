"""The status socket (server and CLI client) and the table a technician reads."""

from __future__ import annotations

import asyncio
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gateway.control import (
    ControlServer,
    ControlSocketError,
    StatusUnavailable,
    format_status,
    query_status,
    socket_path,
)
from gateway.status_table import ago, duration, size

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

NOW = 1_800_000_000.0


def sample() -> dict[str, Any]:
    return {
        "gateway": {
            "store": "shop-0042",
            "id": "gw-1",
            "version": "0.1.0",
            "pid": 4321,
            "uptime_s": 11_530.0,
            "clock_synced": False,
            "config_file": "/etc/storegw/storegw.yaml",
            "something_new": 1,
        },
        "uplink": {
            "state": "connected",
            "host": "mqtt.example.net",
            "port": 8883,
            "connects": 3,
            "disconnects": 2,
            "last_error": "Connection refused",
            "publishes": 1200,
            "acks": 1198,
            "inflight": 2,
            "rtt_ms": 35.2,
            "since": NOW - 300,
        },
        "outbox": {
            "depth": {"business": 0, "telemetry": 12},
            "oldest_age_s": {"business": None, "telemetry": 4.2},
            "bytes": 1_234_567,
            "dropped": {"full": 10, "ttl": 0},
        },
        "pipeline": {"queue_depth": 3, "queue_size": 1000, "events": 12345},
        "commands": {"received": 5, "done": 4, "rejected": {"unknown_command": 1}},
        "devices": [
            {"id": "meter-main", "driver": "modbus", "state": "ok", "since": NOW - 180},
            {
                "id": "till-1",
                "driver": "pos_serial",
                "state": "failed",
                "reason": "port gone",
                "since": NOW - 10,
                "restarts": 4,
                "last_error": "[Errno 2] No such file or directory: '/dev/ttyUSB0'",
                "last_error_at": NOW - 10,
            },
        ],
    }


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "run" / "status.sock"


@pytest.fixture
async def server(sock: Path) -> AsyncIterator[ControlServer]:
    srv = ControlServer(sock, sample)
    await srv.start()
    yield srv
    await srv.close()


async def test_query_returns_the_status(server: ControlServer, sock: Path) -> None:
    answer = await asyncio.to_thread(query_status, sock)
    assert answer == sample()
    assert stat.S_IMODE(sock.stat().st_mode) == 0o660


async def test_idle_client_does_not_block_others_and_close_ends_it(
    server: ControlServer, sock: Path
) -> None:
    reader, writer = await asyncio.open_unix_connection(sock)
    assert (await asyncio.to_thread(query_status, sock))["gateway"]["id"] == "gw-1"
    await server.close()
    assert await reader.read() == b""  # the server hung up on the idle client
    writer.close()
    await writer.wait_closed()
    assert not sock.exists()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "control:client"]


async def test_bad_request_gets_an_error_line(server: ControlServer, sock: Path) -> None:
    reader, writer = await asyncio.open_unix_connection(sock)
    writer.write(b'{"get": "everything"}\n')
    line = await reader.readline()
    assert b"unknown request" in line
    writer.close()
    await writer.wait_closed()


async def test_failing_status_is_reported(sock: Path, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("bug")

    srv = ControlServer(sock, broken)
    await srv.start()
    try:
        with pytest.raises(StatusUnavailable, match="failed to build its status"):
            await asyncio.to_thread(query_status, sock)
    finally:
        await srv.close()
    assert any(r.exc_info for r in caplog.records)


async def test_stale_socket_is_replaced_live_one_is_not(sock: Path) -> None:
    sock.parent.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()  # the file stays behind, nothing listens: a crashed daemon's socket
    with pytest.raises(StatusUnavailable, match="Nothing listens"):
        query_status(sock)
    first = ControlServer(sock, sample)
    await first.start()
    second = ControlServer(sock, sample)
    try:
        with pytest.raises(ControlSocketError, match="another storegw already runs"):
            await second.start()
        assert (await asyncio.to_thread(query_status, sock))["gateway"]["store"] == "shop-0042"
    finally:
        await first.close()


async def test_regular_file_is_not_replaced(sock: Path) -> None:
    sock.parent.mkdir()
    sock.write_text("keep me")
    with pytest.raises(RuntimeError, match="not a socket"):
        await ControlServer(sock, sample).start()
    assert sock.read_text() == "keep me"


async def test_too_long_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="longer than"):
        await ControlServer(tmp_path / ("x" * 120), sample).start()


def test_no_daemon_is_a_helpful_message(sock: Path) -> None:
    with pytest.raises(StatusUnavailable) as caught:
        query_status(sock)
    message = str(caught.value)
    assert str(sock) in message
    assert "not running" in message
    assert "-c" in message


def test_silent_daemon_times_out(sock: Path) -> None:
    sock.parent.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(str(sock))
        mute.listen()  # accepts into the backlog, never answers
        with pytest.raises(StatusUnavailable, match="did not answer"):
            query_status(sock, timeout=0.2)


@dataclass(frozen=True)
class _Gateway:
    state_dir: Path


@dataclass(frozen=True)
class _Status:
    socket: Path | None = None


@dataclass(frozen=True)
class _Config:
    gateway: _Gateway
    status: _Status = _Status()


def test_socket_path_prefers_the_runtime_directory(tmp_path: Path) -> None:
    config = _Config(_Gateway(tmp_path))
    assert socket_path(config, env={}) == tmp_path / "status.sock"
    env = {"RUNTIME_DIRECTORY": "/run/storegw:/run/other"}
    assert socket_path(config, env=env) == Path("/run/storegw/status.sock")


def test_socket_path_from_config_wins(tmp_path: Path) -> None:
    config = _Config(_Gateway(tmp_path), _Status(tmp_path / "here.sock"))
    env = {"RUNTIME_DIRECTORY": "/run/storegw"}
    assert socket_path(config, env=env, client=True) == tmp_path / "here.sock"


def test_table() -> None:
    text = format_status(sample(), width=100, now=NOW)
    lines = text.splitlines()
    assert lines[0] == "storegw 0.1.0 · store shop-0042 · gateway gw-1 · pid 4321"
    assert "up 3h 12m" in lines[1]
    assert "clock NOT synced" in lines[1]
    assert any(line.startswith("uplink   connected mqtt.example.net:8883") for line in lines)
    assert "since 5m ago" in text
    assert "'Connection refused'" in text
    assert "telemetry 12 (oldest 4s)" in text
    assert "1.2 MB" in text
    assert "dropped full 10" in text
    assert "rejected 1 (unknown_command 1)" in text
    header = next(i for i, line in enumerate(lines) if line.startswith("DEVICE"))
    assert lines[header].split() == [
        "DEVICE",
        "DRIVER",
        "STATE",
        "SINCE",
        "RESTARTS",
        "LAST",
        "ERROR",
    ]
    meter, till = lines[header + 1], lines[header + 2]
    assert meter.split() == ["meter-main", "modbus", "ok", "3m", "ago", "0", "-"]
    assert till.startswith("till-1")
    assert "failed" in till
    assert "port gone; [Errno 2]" in till
    assert all(len(line) <= 100 for line in lines)


def test_table_fits_a_narrow_terminal() -> None:
    lines = format_status(sample(), width=60, now=NOW).splitlines()
    assert all(len(line) <= 60 for line in lines), "\n".join(lines)
    till = next(i for i, line in enumerate(lines) if line.startswith("till-1"))
    assert lines[till + 1].startswith("    port gone; [Errno 2]")
    assert lines[till + 1].endswith("…")
    assert format_status(sample(), width=80, now=NOW).splitlines()[-1].endswith("…")


@pytest.mark.parametrize(
    "status",
    [
        {},
        {"uplink": None, "devices": []},
        {"gateway": "oops", "outbox": {"depth": None}, "devices": [None, {"id": 5}]},
    ],
)
def test_table_survives_partial_status(status: dict[str, Any]) -> None:
    text = format_status(status, width=80, now=NOW)
    assert "storegw ?" in text
    assert "uplink   not configured" in text


def test_human_units() -> None:
    assert [duration(s) for s in (0, 59, 200, 720, 11_530, 200_000)] == [
        "0s",
        "59s",
        "3m 20s",
        "12m",
        "3h 12m",
        "2d 7h",
    ]
    assert ago(NOW - 0.5, NOW) == "just now"
    assert ago(None, NOW) == "-"
    assert [size(n) for n in (512, 1500, 2_500_000, 3_000_000_000, None)] == [
        "512 B",
        "1.5 KB",
        "2.5 MB",
        "3.0 GB",
        "-",
    ]
