"""The durable outbox: group commit, order, classes and drops, TTL, corruption, crashes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from gateway.outbox import DeliveryClass, Outbox, OutboxFull
from gateway.outbox_store import ROW_OVERHEAD
from tests.broker import open_outbox

if TYPE_CHECKING:
    from pathlib import Path

B, T = DeliveryClass.BUSINESS, DeliveryClass.TELEMETRY


async def test_group_commit_many_puts_few_commits(tmp_path: Path) -> None:
    async with open_outbox(tmp_path / "o.db", commit_interval=0.01) as ob:
        await asyncio.gather(*(ob.put("t", b"%d" % i, T) for i in range(2000)))
        st = ob.stats()
        assert st["depth"]["telemetry"] == 2000
        assert st["commits"] <= 20  # 2000 puts share a handful of transactions


async def test_put_is_durable_when_it_returns(tmp_path: Path) -> None:
    async with open_outbox(tmp_path / "o.db") as ob:
        await ob.put("events/sales", b'{"txn":1}', B)
        # A second connection sees the row: it was committed, not just queued.
        with sqlite3.connect(tmp_path / "o.db") as db:
            assert db.execute("SELECT COUNT(*) FROM msg").fetchone() == (1,)


async def test_order_per_class_and_fair_interleave(tmp_path: Path) -> None:
    async with open_outbox(tmp_path / "o.db") as ob:
        for i in range(30):
            await ob.put("t", b"t%d" % i, T)
        for i in range(10):
            await ob.put("s", b"s%d" % i, B)
        first = await ob.next_batch(10)
        # Both classes get a share although all telemetry is older.
        assert {m.cls for m in first} == {B, T}
        got = first
        while sum(1 for m in got if m.cls is T) < 30 or sum(1 for m in got if m.cls is B) < 10:
            got += await ob.next_batch(10)
        assert [m.payload for m in got if m.cls is T] == [b"t%d" % i for i in range(30)]
        assert [m.payload for m in got if m.cls is B] == [b"s%d" % i for i in range(10)]


async def test_release_hands_back_unacked_in_order(tmp_path: Path) -> None:
    async with open_outbox(tmp_path / "o.db") as ob:
        for i in range(6):
            await ob.put("s", b"%d" % i, B)
        batch = await ob.next_batch(6)
        await ob.ack([batch[1].seq, batch[3].seq])
        ob.release()
        again = await ob.next_batch(10)
        assert [m.payload for m in again] == [b"0", b"2", b"4", b"5"]
        with pytest.raises(TimeoutError):  # nothing else is available until release()
            async with asyncio.timeout(0.1):
                await ob.next_batch(10)


async def test_reopen_keeps_unacked(tmp_path: Path) -> None:
    async with open_outbox(tmp_path / "o.db") as ob:
        for i in range(5):
            await ob.put("s", b"%d" % i, B)
        batch = await ob.next_batch(2)
        await ob.ack(m.seq for m in batch)
    async with open_outbox(tmp_path / "o.db") as ob:
        assert ob.stats()["depth"]["business"] == 3
        assert [m.payload for m in await ob.next_batch(10)] == [b"2", b"3", b"4"]
        await ob.put("s", b"5", B)
        assert [m.payload for m in await ob.next_batch(10)] == [b"5"]  # seqs never reused


def _size(topic: str, payload: bytes) -> int:
    return len(topic) + len(payload) + ROW_OVERHEAD


async def test_full_drops_oldest_telemetry_never_business(tmp_path: Path) -> None:
    one = _size("t", b"x" * 100)
    async with open_outbox(tmp_path / "o.db", max_size=10 * one) as ob:
        for i in range(10):
            await ob.put("t", b"%03d" % i + b"x" * 97, T)
        for i in range(3):
            await ob.put("t", b"%03d" % (10 + i) + b"x" * 97, T)
        assert ob.stats()["dropped"]["full"] == 3
        kept = await ob.next_batch(100)
        assert [m.payload[:3] for m in kept] == [b"%03d" % i for i in range(3, 13)]
        ob.release()
        # Business makes room by dropping telemetry, and then exceeds the limit itself.
        for i in range(15):
            await ob.put("s", b"%03d" % i + b"x" * 97, B)
        st = ob.stats()
        assert st["depth"] == {"business": 15, "telemetry": 0}
        assert st["dropped"]["full"] == 13
        # Business alone fills it: new telemetry is refused and counted.
        await ob.put("t", b"late", T)
        assert ob.stats()["dropped"]["refused"] == 1
        assert ob.stats()["depth"]["telemetry"] == 0


async def test_business_refused_only_below_free_disk(tmp_path: Path) -> None:
    async with open_outbox(tmp_path / "o.db", min_free_disk=2**62) as ob:
        with pytest.raises(OutboxFull):
            await ob.put("s", b"sale", B)
        await ob.put("t", b"tele", T)  # telemetry is bounded by max_size only
        assert ob.stats()["depth"] == {"business": 0, "telemetry": 1}


async def test_ttl_drops_old_messages(tmp_path: Path) -> None:
    ttl = {B: None, T: 0.05}
    async with open_outbox(tmp_path / "o.db", ttl=ttl) as ob:
        await ob.put("t", b"old", T)
        await ob.put("s", b"sale", B)
        await asyncio.sleep(0.1)  # let the telemetry age past its TTL
        await ob.put("t", b"new", T)
        assert ob.stats()["dropped"]["ttl"] == 1
        assert [m.payload for m in await ob.next_batch(10)] == [b"sale", b"new"]


async def test_corrupt_file_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.ERROR, logger="gateway.outbox"):
        async with open_outbox(path) as ob:
            await ob.put("s", b"sale", B)
            assert [m.payload for m in await ob.next_batch(1)] == [b"sale"]
    aside = list(tmp_path.glob("o.db.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"this is not a database")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "moved it aside" in lines[0]


_WRITER = """
import asyncio, sys
from pathlib import Path
from gateway.outbox import DeliveryClass, Outbox

async def main():
    ob = Outbox(Path(sys.argv[1]), max_size=10**9, min_free_disk=0, commit_interval=0.002,
                ttl={})
    await ob.open()
    async def producer(k):
        i = k
        while True:
            await ob.put("events/sales", b"%d" % i, DeliveryClass.BUSINESS)
            print(i, flush=True)  # printed only after the COMMIT holding it returned
            i += 8
    await asyncio.gather(*(producer(k) for k in range(8)))

asyncio.run(main())
"""


async def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acked: set[int] = set()
    try:
        while len(acked) < 3000:
            line = await asyncio.to_thread(child.stdout.readline)
            assert line, "writer died"
            acked.add(int(line))
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    acked.update(int(line) for line in child.stdout.read().split())  # lines already written
    child.stdout.close()
    async with open_outbox(path) as ob:
        stored: set[int] = set()
        while len(stored) < ob.stats()["depth"]["business"]:
            stored.update(int(m.payload) for m in await ob.next_batch(1000))
    assert acked <= stored
    assert len(stored) >= 3000


async def test_back_pressure_bounds_pending(tmp_path: Path) -> None:
    ob = Outbox(
        tmp_path / "o.db",
        max_size=10**9,
        min_free_disk=0,
        commit_interval=0.01,
        ttl={},
        max_pending=50,
    )
    await ob.open()
    try:
        seen: list[int] = []

        async def put(i: int) -> None:
            await ob.put("t", b"%d" % i, T)
            seen.append(ob.stats()["pending"])

        await asyncio.gather(*(put(i) for i in range(500)))
        assert max(seen) <= 50
        assert ob.stats()["depth"]["telemetry"] == 500
    finally:
        await ob.close()
