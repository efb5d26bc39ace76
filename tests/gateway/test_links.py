"""Links: one transaction at a time, writes first, pauses, timeouts, stale bytes, unplug/replug."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import tty
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gateway.config import ConfigError, parse_config
from gateway.config.links import LinkConfig
from gateway.links import Link, LinkDownError, LinkManager, Priority, ReplyTimeoutError
from gateway.plugins import discover

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class Bytes:
    """A receiver that completes after `n` bytes."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.buf = b""

    def feed(self, data: bytes) -> bytes | None:
        self.buf += data
        return self.buf[: self.n] if len(self.buf) >= self.n else None


class Peer:
    """A TCP peer on 127.0.0.1: answers each 2-byte request `[id, delay_ms/10]` with
    `[id, 0xAA]` after the delay, and records when each request arrived."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[int, float]] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"tcp://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.readexactly(2):
                self.arrivals.append((data[0], time.monotonic()))
                if data[1] == 0xFF:
                    continue  # silent: no answer
                await asyncio.sleep(data[1] / 100)
                writer.write(bytes([data[0], 0xAA]))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    p = Peer()
    await p.start()
    yield p
    await p.stop()


async def test_one_transaction_at_a_time_and_writes_first(peer: Peer) -> None:
    link = Link(LinkConfig(id="lan", url=peer.url, pause="0ms"))
    first = asyncio.create_task(link.exchange(bytes([1, 20]), Bytes(2)))
    while not peer.arrivals:  # the first request holds the link for 200 ms
        await asyncio.sleep(0.01)
    polls = [
        asyncio.create_task(link.exchange(bytes([n, 0]), Bytes(2), priority=Priority.POLL))
        for n in (2, 3)
    ]
    await asyncio.sleep(0)
    write = asyncio.create_task(link.exchange(bytes([9, 0]), Bytes(2), priority=Priority.WRITE))
    replies = await asyncio.gather(first, *polls, write)
    assert [r[0] for r in replies] == [1, 2, 3, 9]
    assert [n for n, _ in peer.arrivals] == [1, 9, 2, 3]  # the write overtook waiting polls
    assert link.counters["transactions"] == 4
    await link.close()


async def test_pause_between_transactions(peer: Peer) -> None:
    link = Link(LinkConfig(id="lan", url=peer.url, pause="100ms"))
    for n in range(3):
        await link.exchange(bytes([n, 0]), Bytes(2))
    times = [t for _, t in peer.arrivals]
    assert all(b - a >= 0.1 for a, b in itertools.pairwise(times))
    await link.close()


async def test_timeout_short_frame_and_stale_bytes(peer: Peer) -> None:
    link = Link(LinkConfig(id="lan", url=peer.url, timeout="100ms"))
    with pytest.raises(ReplyTimeoutError) as silent:
        await link.exchange(bytes([1, 0xFF]), Bytes(2))
    assert silent.value.received == 0
    with pytest.raises(ReplyTimeoutError) as short:
        await link.exchange(bytes([2, 0]), Bytes(3))  # two bytes come, three are needed
    assert short.value.received == 2
    # A reply that comes after its timeout must not answer the next request.
    with pytest.raises(ReplyTimeoutError):
        await link.exchange(bytes([3, 30]), Bytes(2), timeout=0.05)
    while len(peer.arrivals) < 3:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.35)  # let the late reply arrive (that is what is tested)
    assert await link.exchange(bytes([4, 0]), Bytes(2)) == bytes([4, 0xAA])
    assert link.counters["stale_bytes"] == 2
    assert link.counters["timeouts"] == 3
    await link.close()


async def test_cancelled_waiter_does_not_block_the_link(peer: Peer) -> None:
    link = Link(LinkConfig(id="lan", url=peer.url, pause="0ms"))
    first = asyncio.create_task(link.exchange(bytes([1, 10]), Bytes(2)))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(link.exchange(bytes([2, 0]), Bytes(2)))
    await asyncio.sleep(0)
    waiting.cancel()
    await first
    assert await link.exchange(bytes([3, 0]), Bytes(2)) == bytes([3, 0xAA])
    await link.close()


class PtyPeer:
    """A pty whose master end answers every byte with the same byte, plus 0x55."""

    def __init__(self) -> None:
        self.fds: tuple[int, int] | None = None

    def open(self) -> str:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.fds = (master, slave)
        asyncio.get_running_loop().add_reader(master, self._answer)
        return os.ttyname(slave)

    def _answer(self) -> None:
        assert self.fds is not None
        try:
            data = os.read(self.fds[0], 64)
        except OSError:
            return
        os.write(self.fds[0], data + b"\x55")

    def close(self) -> None:
        if self.fds is not None:
            asyncio.get_running_loop().remove_reader(self.fds[0])
            for fd in self.fds:
                os.close(fd)
            self.fds = None


async def test_unplug_and_replug_through_a_by_id_symlink(tmp_path: Path) -> None:
    pty = PtyPeer()
    by_id = tmp_path / "usb-FTDI_FT232R-if00-port0"
    by_id.symlink_to(pty.open())
    manager = LinkManager([LinkConfig(id="bus", path=by_id, pause="0ms", timeout="200ms")])
    link = manager.link("bus")
    assert await link.exchange(b"\x01", Bytes(2)) == b"\x01\x55"
    pty.close()  # the adapter is pulled: the tty goes away, the symlink dangles
    by_id.unlink()
    with pytest.raises((LinkDownError, ReplyTimeoutError)):
        await link.exchange(b"\x02", Bytes(2))
    with pytest.raises(LinkDownError):
        await link.exchange(b"\x03", Bytes(2))
    by_id.symlink_to(pty.open())  # plugged back: a new tty behind the same by-id name
    deadline = time.monotonic() + 10
    while True:
        try:
            reply = await link.exchange(b"\x04", Bytes(2))
            break
        except LinkDownError:
            assert time.monotonic() < deadline, "the link never reopened"
            await asyncio.sleep(0.1)  # the reopen delay is the link's; we only wait it out
    assert reply == b"\x04\x55"
    assert link.counters["opens"] == 2
    assert link.counters["open_failures"] >= 1
    assert manager.stats()["bus"]["open"] is True
    await manager.close()
    pty.close()


async def test_manager_shares_one_link_per_tcp_endpoint() -> None:
    manager = LinkManager([])
    assert manager.link("tcp://127.0.0.1:1502") is manager.link("socket://127.0.0.1:1502")
    with pytest.raises(LookupError, match="no link 'bus9'"):
        manager.link("bus9")
    await manager.close()


GATEWAY = "gateway: {store: s, id: g, state_dir: /tmp/storegw-test}\n"


def test_config_device_link_must_be_declared() -> None:
    text = (
        GATEWAY
        + "links:\n  - {id: bus1, path: /dev/ttyUSB0}\n  - {id: lan, url: 'tcp://10.0.0.2:502'}\n"
        + "devices:\n  - {id: m1, driver: modbus, link: bus2, profile: eastron_sdm120}\n"
    )
    with pytest.raises(ConfigError) as err:
        parse_config(text, "c.yaml", discover(), base_dir=Path("/tmp"))
    assert [str(i) for i in err.value.issues] == [
        (
            "c.yaml:6:36: devices[0].link: no link 'bus2' is declared; did you mean 'bus1'? "
            "(declared: bus1, lan)"
        )
    ]


def test_config_link_errors() -> None:
    text = GATEWAY + (
        "links:\n"
        "  - {id: a, path: /dev/ttyUSB0, url: 'tcp://h:1'}\n"
        "  - {id: b, url: 'tcp://h'}\n"
        "  - {id: c, url: 'tcp://h:1', parity: E}\n"
        "  - {id: d, path: /dev/ttyUSB1, baudrat: 9600}\n"
    )
    with pytest.raises(ConfigError) as err:
        parse_config(text, "c.yaml", discover(), base_dir=Path("/tmp"))
    messages = [i.message for i in err.value.issues]
    assert messages == [
        "give either `path` (a serial port) or `url` (tcp://HOST:PORT)",
        "'tcp://h' needs a host and a port 1-65535: write tcp://HOST:PORT",
        "parity: serial settings apply to `path` links only",
        "unknown key 'baudrat'; did you mean 'baudrate'?",
    ]
