"""Uplink through outages: a broker stopped for 10 s, a silent TCP server instead of one."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

import pytest

from gateway.outbox import DeliveryClass
from gateway.uplink_link import LinkState
from tests.broker import (
    PREFIX,
    Broker,
    LogWatch,
    Subscriber,
    free_port,
    open_outbox,
    running,
    settings,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    import paho.mqtt.client as paho


def _txns(msgs: list[paho.MQTTMessage]) -> list[int]:
    return [json.loads(m.payload)["txn"] for m in msgs if m.topic.endswith("/events/sales")]


@pytest.mark.slow
async def test_broker_outage_loses_no_sale(
    make_broker: Callable[..., Broker], tmp_path: Path
) -> None:
    # Persistence keeps the cloud subscriber's session across the broker restart, so what
    # it misses is the gateway's fault alone.
    b = make_broker(persistence=True)
    stop = asyncio.Event()
    sent = 0

    async def sales() -> None:
        nonlocal sent
        while not stop.is_set():
            await ob.put("events/sales", b'{"txn":%d}' % sent, DeliveryClass.BUSINESS)
            await ob.put("telemetry", b'{"n":%d}' % sent, DeliveryClass.TELEMETRY)
            sent += 1
            await asyncio.sleep(0.005)  # the load's pace, not synchronisation

    async with (
        open_outbox(tmp_path / "o.db") as ob,
        Subscriber(b, f"{PREFIX}/#", client_id="cloud", clean=False) as sub,
        LogWatch("back after").attached() as back,
        running(settings(b), ob) as up,
    ):
        producer = asyncio.create_task(sales(), name="test:sales")
        await sub.wait_for(lambda m: len(_txns(m)) >= 50)
        await asyncio.to_thread(b.stop)
        await asyncio.sleep(10)  # the outage under test lasts 10 s
        assert up.stats()["state"] == LinkState.OFFLINE
        await asyncio.to_thread(b.start)
        async with asyncio.timeout(10):
            await back.seen.wait()
        await sub.wait_for(lambda m: len(_txns(m)) >= 50 + 200)
        stop.set()
        await producer
        msgs = await sub.wait_for(lambda m: sent - 1 in _txns(m), timeout=20)
    txns = _txns(msgs)
    assert set(txns) == set(range(sent)), "a sale is missing"  # duplicates allowed, gaps not
    assert up.stats()["connects"] == 2
    assert up.stats()["disconnects"] == 1


@contextlib.asynccontextmanager
async def silent_server(port: int, accepted: asyncio.Queue[int]) -> AsyncIterator[None]:
    """Accepts TCP and reads, but never answers: a broker that hangs before CONNACK."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await accepted.put(len(writers))
        with contextlib.suppress(ConnectionError):
            while await reader.read(1024):
                pass

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for w in writers:
            w.close()
        await server.wait_closed()


async def test_silent_server_then_real_broker(
    make_broker: Callable[..., Broker], tmp_path: Path
) -> None:
    port = free_port()
    accepted: asyncio.Queue[int] = asyncio.Queue()
    cfg = settings(port, connect_timeout=0.3)
    async with (
        open_outbox(tmp_path / "o.db") as ob,
        LogWatch("no answer to CONNECT").attached() as watch,
    ):
        await ob.put("events/sales", b'{"txn":7}', DeliveryClass.BUSINESS)
        async with running(cfg, ob) as up:
            async with silent_server(port, accepted):
                async with asyncio.timeout(10):
                    while await accepted.get() < 3:  # it keeps retrying
                        pass
                    await watch.seen.wait()
                assert up.stats()["state"] == LinkState.OFFLINE
                assert up.stats()["retries"] >= 2
                assert not await up.publish_now("status", b"{}")  # offline: refused at once
            b = make_broker(port=port)
            async with Subscriber(b, f"{PREFIX}/#") as sub:
                msgs = await sub.wait_for(lambda m: any(x.topic.endswith("sales") for x in m))
        # The cause is named (the very first attempt may still meet a closed port).
        assert any("no answer to CONNECT" in line and "down" in line for line in watch.lines)
    assert any(json.loads(m.payload).get("txn") == 7 for m in msgs)


async def test_run_is_cancellable_while_connecting(tmp_path: Path) -> None:
    port = free_port()
    accepted: asyncio.Queue[int] = asyncio.Queue()
    cfg = settings(port, connect_timeout=30.0)  # would hang for 30 s if not cancellable
    async with (
        open_outbox(tmp_path / "o.db") as ob,
        silent_server(port, accepted),
        running(cfg, ob),  # leaving the block cancels run(), which must end within 5 s
        asyncio.timeout(5),
    ):
        await accepted.get()
