"""Uplink against a real mosquitto: QoS 1 delivery, order, sizes, sessions, will, ACL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.clouds.base import Out, Profile
from gateway.outbox import DeliveryClass, Stored
from gateway.uplink import Uplink
from gateway.uplink_link import LinkState
from tests.broker import HOST, PREFIX, Broker, LogWatch, Subscriber, open_outbox, running, settings

if TYPE_CHECKING:
    from collections.abc import Callable


def _status(msgs: list[paho.MQTTMessage], state: str) -> bool:
    return any(
        m.topic == f"{PREFIX}/status" and json.loads(m.payload)["state"] == state for m in msgs
    )


@pytest.mark.parametrize("version", ["5", "3.1.1"])
async def test_delivery_at_qos1_in_order_per_class(
    broker: Broker, tmp_path: Path, version: str
) -> None:
    async with open_outbox(tmp_path / "o.db") as ob, Subscriber(broker, f"{PREFIX}/#") as sub:
        # gather starts the puts in order, so each class is stored in order, in few commits.
        await asyncio.gather(
            *(
                ob.put(topic, json.dumps({key: i}).encode(), cls)
                for i in range(300)
                for topic, key, cls in (
                    ("events/sales", "txn", DeliveryClass.BUSINESS),
                    ("telemetry", "w", DeliveryClass.TELEMETRY),
                )
            )
        )
        cfg = settings(broker, version=version)
        async with running(cfg, ob) as up:
            msgs = await sub.wait_for(lambda m: len(m) >= 601)
            assert up.connected
            # Deleted after PUBACK: the deletions are group-committed shortly after delivery.
            async with asyncio.timeout(10):
                while ob.stats()["depth"] != {"business": 0, "telemetry": 0}:
                    await asyncio.sleep(0.02)
        sales = [json.loads(m.payload)["txn"] for m in msgs if m.topic.endswith("events/sales")]
        tele = [json.loads(m.payload)["w"] for m in msgs if m.topic.endswith("/telemetry")]
        assert sales == list(range(300))
        assert tele == list(range(300))
        assert all(m.qos == 1 for m in msgs)
        birth = next(m for m in msgs if m.topic == f"{PREFIX}/status")
        body = json.loads(birth.payload)
        assert body["state"] == "online"
        assert body["gw"] == "gw-1"
        assert len(body["id"]) == 26


async def test_too_large_or_invalid_topic_is_dropped_and_counted(
    broker: Broker, tmp_path: Path
) -> None:
    async with open_outbox(tmp_path / "o.db") as ob, Subscriber(broker, f"{PREFIX}/t/#") as sub:
        await ob.put("t/big", b"x" * 2000, DeliveryClass.TELEMETRY)
        await ob.put("t/+/wild", b"{}", DeliveryClass.TELEMETRY)  # a producer's bug
        await ob.put("t/small", b"ok", DeliveryClass.TELEMETRY)
        async with running(settings(broker, max_payload=1000), ob) as up:
            msgs = await sub.wait_for(lambda m: len(m) >= 1)
            assert up.stats()["dropped"] == {"too_large": 1, "invalid_topic": 1}
            assert up.connected  # neither took the link down
        assert [m.topic for m in msgs] == [f"{PREFIX}/t/small"]
        assert ob.stats()["depth"]["telemetry"] == 0


@pytest.mark.parametrize("version", ["5", "3.1.1"])
async def test_commands_sent_while_offline_arrive_after_reconnect(
    broker: Broker, tmp_path: Path, version: str
) -> None:
    got: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def on_command(name: str, payload: bytes) -> None:
        await got.put((name, payload))

    cfg = settings(broker, version=version)
    async with open_outbox(tmp_path / "o.db") as ob, Subscriber(broker, f"{PREFIX}/status") as sub:
        async with running(cfg, ob, on_command):
            await sub.wait_for(lambda m: _status(m, "online"))
        # The gateway is offline now; the cloud sends a command.
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="cloud-pub")
        pub.connect(HOST, broker.port)
        pub.loop_start()
        try:
            pub.publish(f"{PREFIX}/cmd/ping", b'{"id":"c1"}', qos=1).wait_for_publish(5)
            pub.publish(f"{PREFIX}/cmd/ping/ack", b"not ours", qos=1).wait_for_publish(5)
        finally:
            pub.disconnect()
            pub.loop_stop()
        async with running(cfg, ob, on_command):
            async with asyncio.timeout(10):
                name, payload = await got.get()
        assert (name, payload) == ("ping", b'{"id":"c1"}')
        assert got.empty()


async def test_command_handler_error_does_not_break_the_link(
    broker: Broker, tmp_path: Path
) -> None:
    calls: asyncio.Queue[str] = asyncio.Queue()

    async def on_command(name: str, payload: bytes) -> None:
        await calls.put(name)
        if name == "boom":
            raise RuntimeError("handler bug")

    async with (
        open_outbox(tmp_path / "o.db") as ob,
        Subscriber(broker, f"{PREFIX}/#") as sub,
        running(settings(broker), ob, on_command) as up,
    ):
        await sub.wait_for(lambda m: _status(m, "online"))
        for name in ("boom", "ping"):
            sub._client.publish(f"{PREFIX}/cmd/{name}", b"{}", qos=1)
        async with asyncio.timeout(5):
            assert [await calls.get(), await calls.get()] == ["boom", "ping"]
        assert up.connected
        assert up.stats()["connects"] == 1


_CHILD = """
import asyncio, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from tests.broker import open_outbox, settings
from gateway.uplink import Uplink

async def main():
    async with open_outbox(Path({db!r})) as ob:
        async def ignore(n, p): pass
        up = Uplink(settings({port}, keepalive=60), ob, birth=lambda: {{"state": "online"}},
                    on_command=ignore)
        task = asyncio.create_task(up.run(), name="uplink")
        while not up.connected:
            await asyncio.sleep(0.01)
        print("connected", flush=True)
        await task

asyncio.run(main())
"""


async def test_last_will_on_kill(broker: Broker, tmp_path: Path) -> None:
    tests = str(Path(__file__).resolve().parents[2])
    code = _CHILD.format(tests=tests, db=str(tmp_path / "o.db"), port=broker.port)
    async with Subscriber(broker, f"{PREFIX}/status") as sub:
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        try:
            assert child.stdout is not None
            line = await asyncio.to_thread(child.stdout.readline)
            assert line.strip() == b"connected"
            await sub.wait_for(lambda m: _status(m, "online"))
        finally:
            child.kill()  # SIGKILL: no DISCONNECT, the broker must publish the will
            child.wait()
            if child.stdout:
                child.stdout.close()
        msgs = await sub.wait_for(lambda m: _status(m, "offline"))
        will = json.loads(msgs[-1].payload)
        assert will["state"] == "offline"
        assert will["gw"] == "gw-1"
        assert will["ts"].endswith("Z")


async def test_acl_only_own_prefix(make_broker: Callable[..., Broker], tmp_path: Path) -> None:
    acl = f"user admin\ntopic readwrite #\n\nuser gw\ntopic readwrite {PREFIX}/#\n"
    b = make_broker(users={"admin": "adminpw", "gw": "gwpw"}, acl=acl)
    cfg = settings(b, username="gw", password="gwpw")
    async with (
        open_outbox(tmp_path / "o.db") as ob,
        Subscriber(b, "#", username="admin", password="adminpw") as sub,
    ):
        for i in range(20):
            await ob.put("events/sales", b'{"txn":%d}' % i, DeliveryClass.BUSINESS)
            await ob.put("telemetry", b"{}", DeliveryClass.TELEMETRY)
            await ob.put("cmd/ping/ack", b"{}", DeliveryClass.BUSINESS)
        async with running(cfg, ob) as up:
            await sub.wait_for(lambda m: len(m) >= 61)
            assert await up.publish_now("metrics", b"{}")
            await sub.wait_for(lambda m: any(x.topic.endswith("/metrics") for x in m))
        msgs = sub.snapshot()
    assert all(m.topic.startswith(f"{PREFIX}/") for m in msgs)
    assert "Denied" not in b.log_text()


async def test_publish_refused_by_the_broker_is_kept_and_counted(
    make_broker: Callable[..., Broker], tmp_path: Path
) -> None:
    # MQTT 5: mosquitto answers a publish its ACL denies with PUBACK reason 0x87.
    acl = f"user gw\ntopic readwrite {PREFIX}/#\ntopic deny {PREFIX}/t/denied\n"
    b = make_broker(users={"gw": "gwpw"}, acl=acl)
    cfg = settings(b, username="gw", password="gwpw")
    async with (
        open_outbox(tmp_path / "o.db") as ob,
        LogWatch("refused").attached() as watch,
    ):
        await ob.put("t/denied", b"{}", DeliveryClass.TELEMETRY)
        await ob.put("t/denied", b"{}", DeliveryClass.TELEMETRY)
        await ob.put("t/ok", b"{}", DeliveryClass.TELEMETRY)
        async with running(cfg, ob) as up:
            async with asyncio.timeout(10):
                while up.stats()["acks"] < 1 or sum(up.stats()["refused"].values()) < 2:
                    await asyncio.sleep(0.02)
                while ob.stats()["depth"]["telemetry"] != 2:  # t/ok deleted after its PUBACK
                    await asyncio.sleep(0.02)
            assert up.stats()["refused"] == {"Not authorized": 2}
            assert up.stats()["inflight"] == 0
    refusals = [line for line in watch.lines if "refused" in line]
    assert len(refusals) == 1, refusals  # once per reason and session, not per message
    assert "Not authorized" in refusals[0]


async def test_wrong_password_is_one_clear_line(
    make_broker: Callable[..., Broker], tmp_path: Path
) -> None:
    b = make_broker(users={"gw": "gwpw"})
    cfg = settings(b, username="gw", password="wrong")
    async with LogWatch("is down").attached() as watch, open_outbox(tmp_path / "o.db") as ob:
        async with running(cfg, ob) as up:
            async with asyncio.timeout(10):
                await watch.seen.wait()
            assert up.stats()["state"] == LinkState.OFFLINE
        down = [line for line in watch.lines if "down" in line]
        assert len(down) == 1, down  # retries are counted, not logged
        assert "authoriz" in down[0].lower() or "password" in down[0].lower()


class _Quiet(Profile):
    """A profile that sends nothing for `t/quiet` (as a cloud dialect may)."""

    def outgoing(self, message: Stored) -> list[Out]:
        return [] if message.topic == "t/quiet" else super().outgoing(message)


async def test_a_message_the_profile_sends_nothing_for_is_done(
    broker: Broker, tmp_path: Path
) -> None:
    cfg = settings(broker)
    async with open_outbox(tmp_path / "o.db") as ob, Subscriber(broker, f"{PREFIX}/t/#") as sub:
        await ob.put("t/quiet", b"{}", DeliveryClass.TELEMETRY)
        await ob.put("t/loud", b"{}", DeliveryClass.TELEMETRY)
        up = Uplink(
            cfg,
            ob,
            birth=lambda: {"state": "online"},
            on_command=_no_command,
            profile=_Quiet(cfg.prefix, cfg.client_id),
        )
        task = asyncio.create_task(up.run(), name="uplink")
        try:
            msgs = await sub.wait_for(lambda m: len(m) >= 1)
            async with asyncio.timeout(10):
                while ob.stats()["depth"]["telemetry"]:
                    await asyncio.sleep(0.02)
            assert up.stats()["inflight"] == 0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert [m.topic for m in msgs] == [f"{PREFIX}/t/loud"]


async def _no_command(_name: str, _payload: bytes) -> None:
    return None
