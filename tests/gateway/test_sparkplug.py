"""Sparkplug B 3.0 edge node against mosquitto; every message is decoded with the test's own
decoder (`sparkplug_decoder.py`, from the spec's .proto) and checked against the rules."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from gateway.outbox import DeliveryClass
from gateway.sparkplug.node import SparkplugNode
from tests.broker import Subscriber, open_outbox, settings
from tests.gateway.cloud_peers import CloudBroker, put_sale_and_telemetry, running_profile
from tests.gateway.sparkplug_decoder import decode, encode_command

if TYPE_CHECKING:
    from pathlib import Path

    import paho.mqtt.client as paho

    from tests.broker import Broker

NS = "spBv1.0/shop-1"
TYPES = {"Int64": 4, "Double": 10, "Boolean": 11, "String": 12}


def _node(**kw: Any) -> SparkplugNode:
    return SparkplugNode(
        group="shop-1",
        edge="gw-1",
        client_id="gw-1",
        devices={"meter-a": "sim_meter", "till-1": "sim_pos"},
        **kw,
    )


def _kind(m: paho.MQTTMessage) -> str:
    parts = m.topic.split("/")
    return "STATE" if parts[1] == "STATE" else parts[2]


def _node_msgs(msgs: list[paho.MQTTMessage]) -> list[tuple[str, str, Any]]:
    """(kind, topic, decoded payload) of every edge-node message, in arrival order."""
    return [
        (_kind(m), m.topic, decode(bytes(m.payload)))
        for m in msgs
        if _kind(m) not in ("STATE", "NCMD", "DCMD")  # the host's own messages
    ]


def _metrics(payload: Any) -> dict[str, Any]:
    return {m.name: m for m in payload.metrics}


def _check_sequence(msgs: list[tuple[str, str, Any]]) -> None:
    """Sparkplug 3.0: NBIRTH seq 0; each following message +1 mod 256; NDEATH has no seq;
    births carry datatypes for every metric, DATA messages none."""
    expected: int | None = None
    for kind, topic, p in msgs:
        if kind == "NDEATH":
            assert not p.HasField("seq"), topic
            assert [m.name for m in p.metrics] == ["bdSeq"]
            expected = None
            continue
        assert p.HasField("seq"), topic
        if kind == "NBIRTH":
            assert p.seq == 0
        else:
            assert expected is not None, f"{kind} before NBIRTH"
            assert p.seq == expected, (topic, p.seq, expected)
        expected = (p.seq + 1) % 256
        if kind.endswith("BIRTH"):
            assert all(m.HasField("datatype") for m in p.metrics), topic
        if kind.endswith("DATA"):
            assert not any(m.HasField("datatype") for m in p.metrics), topic


def _has(kind: str, n: int = 1) -> Any:
    return lambda msgs: sum(1 for m in msgs if _kind(m) == kind) >= n


async def test_births_data_rebirth_command_and_death(broker: Broker, tmp_path: Path) -> None:
    got: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def on_command(name: str, payload: bytes) -> None:
        await got.put((name, payload))

    async with open_outbox(tmp_path / "o.db") as ob, Subscriber(broker, "spBv1.0/#") as sub:
        await put_sale_and_telemetry(ob, 3)  # stored before the node's birth: historical
        async with running_profile(settings(broker), ob, _node(), on_command):
            await sub.wait_for(_has("NDATA", 3))
            await put_sale_and_telemetry(ob, 2, start=3)
            await sub.wait_for(lambda m: _has("NDATA", 5)(m) and _has("DDATA", 5)(m))
            sub._client.publish(f"{NS}/NCMD/gw-1", encode_command({"Node Control/Rebirth": True}))
            await sub.wait_for(_has("NBIRTH", 2))
            cmd = encode_command({"storegw/cmd/ping": '{"id":"c1"}'})
            sub._client.publish(f"{NS}/NCMD/gw-1", cmd, qos=1)
            async with asyncio.timeout(10):
                assert await got.get() == ("ping", b'{"id":"c1"}')
            await put_sale_and_telemetry(ob, 1, start=5)
            await sub.wait_for(lambda m: _has("NDATA", 6)(m) and _has("DDATA", 6)(m))
        msgs = _node_msgs(await sub.wait_for(_has("NDEATH")))
    _check_sequence(msgs)
    kinds = [k for k, _, _ in msgs]
    assert kinds[:3] == ["NBIRTH", "DBIRTH", "DBIRTH"]
    assert kinds[-1] == "NDEATH"  # published before the clean DISCONNECT
    births = [p for k, _, p in msgs if k == "NBIRTH"]
    for birth in births:  # a rebirth keeps the session's bdSeq
        metrics = _metrics(birth)
        assert metrics["bdSeq"].datatype == TYPES["Int64"]
        assert metrics["bdSeq"].long_value == 0
        assert metrics["Node Control/Rebirth"].boolean_value is False
        assert metrics["storegw/events/sales"].datatype == TYPES["String"]
    assert _metrics(msgs[-1][2])["bdSeq"].long_value == 0
    ddata = [(t, p) for k, t, p in msgs if k == "DDATA"]
    assert {t for t, _ in ddata} == {f"{NS}/DDATA/gw-1/meter-a"}
    last = [_metrics(p)["power_kw"].double_value for _, p in ddata]
    assert last == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    historical = [_metrics(p)["power_kw"].is_historical for _, p in ddata]
    assert historical == [True, True, True, False, False, False]
    # The first window brought new metrics: a DBIRTH declaring them came before its DDATA.
    dbirths = [_metrics(p) for k, t, p in msgs if k == "DBIRTH" and t.endswith("/meter-a")]
    assert any("power_kw/mean" in m and m["power_kw/mean"].datatype == 10 for m in dbirths)
    sales = [_metrics(p)["storegw/events/sales"] for k, _, p in msgs if k == "NDATA"]
    assert [json.loads(m.string_value)["txn"] for m in sales] == list(range(6))
    assert "Will message specified" in broker.log_text()


async def test_restart_new_bdseq_and_replay_with_is_historical(tmp_path: Path) -> None:
    b = CloudBroker(tmp_path, extra=["queue_qos0_messages true"], persistence=True)
    b.start()
    try:
        async with (
            open_outbox(tmp_path / "o.db") as ob,
            Subscriber(b, "spBv1.0/#", clean=False, client_id="host") as sub,
            running_profile(settings(b), ob, _node()) as up,
        ):
            await sub.wait_for(_has("DBIRTH", 2))
            b.stop()
            async with asyncio.timeout(10):
                while up.connected:
                    await asyncio.sleep(0.02)
            for i in range(5):
                await ob.put("events/sales", b'{"txn":%d}' % i, DeliveryClass.BUSINESS)
            b.start()
            msgs = _node_msgs(await sub.wait_for(_has("NDATA", 5)))
    finally:
        b.stop()
    _check_sequence(msgs)
    births = [_metrics(p)["bdSeq"].long_value for k, _, p in msgs if k == "NBIRTH"]
    assert births == [0, 1]  # +1 per CONNECT
    ndata = [_metrics(p)["storegw/events/sales"] for k, _, p in msgs if k == "NDATA"]
    assert [json.loads(m.string_value)["txn"] for m in ndata] == list(range(5))
    assert all(m.is_historical for m in ndata)


async def test_primary_host_state_holds_data_until_online(broker: Broker, tmp_path: Path) -> None:
    state = "spBv1.0/STATE/scada"

    def host(online: bool, ts: int) -> None:
        body = json.dumps({"online": online, "timestamp": ts}).encode()
        sub._client.publish(state, body, qos=1, retain=True).wait_for_publish(5)

    async with open_outbox(tmp_path / "o.db") as ob, Subscriber(broker, "spBv1.0/#") as sub:
        host(online=False, ts=100)
        async with running_profile(settings(broker), ob, _node(primary_host="scada")) as up:
            async with asyncio.timeout(10):
                while f"{state}" not in broker.log_text() or not up.connected:
                    await asyncio.sleep(0.02)  # polling the broker's log with a deadline
            await put_sale_and_telemetry(ob, 2)
            host(online=True, ts=90)  # older than the last STATE seen: ignored
            host(online=True, ts=200)
            await sub.wait_for(_has("NDATA", 2))
            host(online=False, ts=300)  # NDEATH, disconnect, connect again and wait
            await sub.wait_for(_has("NDEATH"))
            host(online=True, ts=400)
            msgs = _node_msgs(await sub.wait_for(_has("NBIRTH", 2)))
    _check_sequence(msgs)
    kinds = [k for k, _, _ in msgs]
    assert kinds[0] == "NBIRTH"  # nothing was sent before the host was online
    assert kinds.index("NBIRTH") < kinds.index("NDATA")
    deaths = [_metrics(p)["bdSeq"].long_value for k, _, p in msgs if k == "NDEATH"]
    births = [_metrics(p)["bdSeq"].long_value for k, _, p in msgs if k == "NBIRTH"]
    assert births == [0, 1]
    assert deaths[0] == 0
    held = [_metrics(p)["storegw/events/sales"] for k, _, p in msgs if k == "NDATA"]
    assert all(m.is_historical for m in held)  # stored while the host was away


async def test_primary_host_flapping_reconnects_and_stops(broker: Broker, tmp_path: Path) -> None:
    """STATE flapping faster than a session lasts: every `offline` after birth ends the
    session, the node births again on the newest `online`, and the uplink stops at once
    when cancelled mid-birth (a cancel racing a publish's completion must not be lost)."""
    state = "spBv1.0/STATE/scada"

    def host(online: bool, ts: int) -> None:
        body = json.dumps({"online": online, "timestamp": ts}).encode()
        sub._client.publish(state, body, qos=1, retain=True).wait_for_publish(5)

    async with open_outbox(tmp_path / "o.db") as ob, Subscriber(broker, "spBv1.0/#") as sub:
        host(online=True, ts=100)
        for rounds in range(1, 4):
            async with running_profile(settings(broker), ob, _node(primary_host="scada")) as up:
                await sub.wait_for(_has("NBIRTH", 2 * rounds - 1))
                ts = 1000 * rounds
                host(online=False, ts=ts)  # no wait: the next STATE races the session's end
                host(online=True, ts=ts + 1)
                await sub.wait_for(_has("NBIRTH", 2 * rounds))
                assert up.connected
            # running_profile awaited the cancelled uplink (5 s deadline): it did stop.
            await sub.wait_for(_has("NDEATH", 2 * rounds))
        msgs = _node_msgs(sub.messages)
    _check_sequence(msgs)
    births = [_metrics(p)["bdSeq"].long_value for k, _, p in msgs if k == "NBIRTH"]
    assert births == [0, 1] * 3  # +1 per CONNECT, from 0 again for each new node


async def test_bdseq_goes_on_across_gateway_restarts(broker: Broker, tmp_path: Path) -> None:
    state = tmp_path / "sparkplug.bdseq"
    async with open_outbox(tmp_path / "o.db") as ob, Subscriber(broker, "spBv1.0/#") as sub:
        for run in range(1, 3):  # two daemon runs: a new node object each time
            async with running_profile(settings(broker), ob, _node(state_file=state)):
                await sub.wait_for(_has("NBIRTH", run))
            await sub.wait_for(_has("NDEATH", run))
        msgs = _node_msgs(sub.messages)
    births = [_metrics(p)["bdSeq"].long_value for k, _, p in msgs if k == "NBIRTH"]
    deaths = [_metrics(p)["bdSeq"].long_value for k, _, p in msgs if k == "NDEATH"]
    assert births == deaths == [0, 1]
    assert state.read_text() == "2\n"


def test_a_damaged_bdseq_file_starts_again_at_zero(tmp_path: Path) -> None:
    state = tmp_path / "sparkplug.bdseq"
    for junk in (b"", b"256", b"-1", b"x", "²".encode(), b"\xff\xfe"):
        state.write_bytes(junk)
        node = _node(state_file=state)
        node.login()
        assert node.bd_seq == 0, junk
    state.write_text("255\n")
    node = _node(state_file=state)
    node.login()
    assert node.bd_seq == 255
