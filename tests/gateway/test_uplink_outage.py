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
    from collections.abc import AsyncIterator, Awaitable, Callable
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
async def _tcp_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    port: int,
    writers: list[asyncio.StreamWriter],
) -> AsyncIterator[None]:
    """Serve `handle` on 127.0.0.1:`port`; on exit close the server and every connection."""
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for w in writers:
            w.close()
        await server.wait_closed()


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

    async with _tcp_server(handle, port, writers):
        yield


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


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One MQTT control packet: (first byte, the rest after the remaining length)."""
    first = (await reader.readexactly(1))[0]
    length, mult = 0, 1
    while True:
        byte = (await reader.readexactly(1))[0]
        length += (byte & 0x7F) * mult
        mult *= 128
        if not byte & 0x80:
            break
    return first, await reader.readexactly(length)


@contextlib.asynccontextmanager
async def scripted_broker(
    port: int, connections: asyncio.Queue[int], puback: Callable[[str, bytes], bytes | None]
) -> AsyncIterator[None]:
    """An MQTT 3.1.1/5 server that answers CONNECT, SUBSCRIBE and PINGREQ, and answers each
    QoS 1 PUBLISH with `puback(topic, packet_id)` (None: no answer at all). For what no real
    broker can be told to do: lose PUBACKs, or send reason strings with them."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await connections.put(len(writers))
        v5 = False
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                first, body = await _read_packet(reader)
                kind = first >> 4
                if kind == 1:  # CONNECT -> CONNACK, accepted (protocol level after "MQTT")
                    v5 = body[6] == 5
                    writer.write(b"\x20\x03\x00\x00\x00" if v5 else b"\x20\x02\x00\x00")
                elif kind == 8:  # SUBSCRIBE -> SUBACK granting QoS 1
                    props = b"\x00" if v5 else b""
                    rest = body[:2] + props + b"\x01"
                    writer.write(bytes([0x90, len(rest)]) + rest)
                elif kind == 12:  # PINGREQ -> PINGRESP
                    writer.write(b"\xd0\x00")
                elif kind == 3 and (first >> 1) & 3 == 1:  # PUBLISH at QoS 1
                    n = int.from_bytes(body[:2], "big")
                    answer = puback(body[2 : 2 + n].decode(), body[2 + n : 4 + n])
                    if answer is not None:
                        writer.write(answer)
                elif kind == 14:  # DISCONNECT
                    break
                await writer.drain()

    async with _tcp_server(handle, port, writers):
        yield


def _birth_only(topic: str, mid: bytes) -> bytes | None:
    return b"\x40\x02" + mid if topic.endswith("/status") else None


async def test_overdue_puback_ends_the_session_and_keeps_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.uplink._ACK_WAIT_MIN", 0.5)
    port = free_port()
    connections: asyncio.Queue[int] = asyncio.Queue()
    # keepalive 1: PINGREQs every second are answered, so only the PUBACK is missing.
    cfg = settings(port, version="3.1.1", keepalive=1)
    async with (
        open_outbox(tmp_path / "o.db") as ob,
        LogWatch("no PUBACK within 2s").attached() as watch,
        scripted_broker(port, connections, _birth_only),
    ):
        await ob.put("events/sales", b'{"txn":1}', DeliveryClass.BUSINESS)
        async with running(cfg, ob) as up:
            async with asyncio.timeout(10):
                await watch.seen.wait()  # the session ended on the overdue PUBACK ...
                while await connections.get() < 2:  # ... and the uplink connected again
                    pass
            assert up.stats()["disconnects"] >= 1
            assert up.stats()["acks"] == 0
        assert ob.stats()["depth"]["business"] == 1  # kept, to be sent again


async def test_puback_with_reason_string_goes_through_pahos_decoding(tmp_path: Path) -> None:
    # MQTT 5 PUBACK: packet id, 0x97 "Quota exceeded", properties: reason string (0x1F).
    reason = b"\x1f\x00\x09slow down"

    def throttled(topic: str, mid: bytes) -> bytes:
        if topic.endswith("/status"):
            return b"\x40\x02" + mid
        rest = mid + b"\x97" + bytes([len(reason)]) + reason
        return bytes([0x40, len(rest)]) + rest

    port = free_port()
    connections: asyncio.Queue[int] = asyncio.Queue()
    async with (
        open_outbox(tmp_path / "o.db") as ob,
        scripted_broker(port, connections, throttled),
        running(settings(port), ob) as up,
    ):
        await ob.put("events/sales", b'{"txn":1}', DeliveryClass.BUSINESS)
        async with asyncio.timeout(10):
            while not up.stats()["refused"]:
                await asyncio.sleep(0.02)
        assert up.stats()["refused"] == {"Quota exceeded": 1}
        assert up.stats()["acks"] == 0
        assert ob.stats()["depth"]["business"] == 1
