"""Each cloud profile against mosquitto set up like that cloud: login with the computed
credentials, telemetry and a sale on the cloud's topics, a command, a broker restart."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import pytest

from gateway.clouds.aliyun import AliyunProfile
from gateway.clouds.aws import AwsProfile
from gateway.clouds.azure import AzureProfile
from gateway.outbox import DeliveryClass
from tests.broker import PREFIX, LogWatch, Subscriber, open_outbox, settings
from tests.gateway.cloud_peers import (
    ADMIN,
    ALIYUN,
    AZURE_DEVICE,
    AZURE_HUB,
    AZURE_KEY,
    aliyun_password,
    azure_token,
    azure_user,
    make_cloud_broker,
    no_retain_rules,
    put_sale_and_telemetry,
    retained_publish_is_refused,
    running_profile,
    sales_seen,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from gateway.uplink import Uplink
    from tests.broker import Broker, Pki
    from tests.gateway.cloud_peers import CloudBroker


@pytest.fixture
def cloud_broker() -> Iterator[Callable[..., CloudBroker]]:
    """`make_cloud_broker`, with every broker it starts stopped after the test."""
    made: list[CloudBroker] = []

    def make(*args: Any, **kw: Any) -> CloudBroker:
        broker = make_cloud_broker(*args, **kw)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()


# The worked examples' instants: Azure's token expires at 1700003600 (ttl 1h), Aliyun's
# timestamp is 1700000000000 ms.
T0 = 1_700_000_000.0
EVENTS = f"devices/{AZURE_DEVICE}/messages/events/"


def _props(topic: str) -> dict[str, str]:
    return dict(parse_qsl(topic[len(EVENTS) :]))


async def _commands() -> tuple[asyncio.Queue[tuple[str, bytes]], Callable[..., object]]:
    got: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def on_command(name: str, payload: bytes) -> None:
        await got.put((name, payload))

    return got, on_command


async def _restart_and_refill(broker: Broker, ob: object, up: Uplink) -> None:
    """Stop the broker, queue 20 more messages while it is down, start it again."""
    broker.stop()
    async with asyncio.timeout(10):
        while up.connected:
            await asyncio.sleep(0.02)
    await put_sale_and_telemetry(ob, 20, start=10)  # type: ignore[arg-type]
    broker.start()


async def test_aws_iot_mutual_tls_thing_name_and_restart(
    make_broker: Callable[..., Broker], pki: Pki, tmp_path: Path
) -> None:
    b = make_broker(pki=pki, persistence=True)
    cfg = settings(b, tls_ca=pki.ca, tls_cert=pki.client_cert, tls_key=pki.client_key)
    profile = AwsProfile(PREFIX, "shop-1-gw-1")
    got, on_command = await _commands()
    async with (
        open_outbox(tmp_path / "o.db") as ob,
        Subscriber(b, f"{PREFIX}/#", clean=False, client_id="cloud-aws") as sub,
        running_profile(cfg, ob, profile, on_command) as up,  # type: ignore[arg-type]
    ):
        await put_sale_and_telemetry(ob, 10)
        await sub.wait_for(lambda m: len(sales_seen(m, f"{PREFIX}/events/sales")) >= 10)
        sub._client.publish(f"{PREFIX}/cmd/ping", b'{"id":"c1"}', qos=1)
        async with asyncio.timeout(10):
            assert await got.get() == ("ping", b'{"id":"c1"}')
        await _restart_and_refill(b, ob, up)
        msgs = await sub.wait_for(
            lambda m: (
                len(sales_seen(m, f"{PREFIX}/events/sales")) >= 30
                and sum(1 for x in m if x.topic == f"{PREFIX}/telemetry") >= 30
            )
        )
    assert sorted(set(sales_seen(msgs, f"{PREFIX}/events/sales"))) == list(range(30))
    assert all(m.qos <= 1 for m in msgs)
    status = [m for m in msgs if m.topic == f"{PREFIX}/status"]
    assert status and json.loads(status[0].payload)["state"] == "online"
    assert "as shop-1-gw-1 " in b.log_text()  # client id = thing name
    assert sum(1 for m in msgs if m.topic == f"{PREFIX}/telemetry") >= 30


async def test_azure_sas_login_events_c2d_methods_and_restart(
    tmp_path: Path, cloud_broker: Callable[..., CloudBroker]
) -> None:
    token = (
        "SharedAccessSignature sr=mystore-hub.azure-devices.net%2Fdevices%2Fgw-001"
        "&sig=qfOg0ga3UeB9KwaGYF1WxyPxfLLtrUtTs8tcCLFswg8%3D&se=1700003600"
    )  # protocols.md §6.4, byte for byte
    assert azure_token(1_700_003_600) == token
    acl = (
        f"user {ADMIN[0]}\ntopic readwrite #\ntopic readwrite $iothub/#\n\n"
        f"user {azure_user()}\ntopic write {EVENTS}#\n"
        f"topic read devices/{AZURE_DEVICE}/messages/devicebound/#\n"
        "topic read $iothub/methods/POST/#\ntopic write $iothub/methods/res/#\n"
    )
    b = cloud_broker(
        tmp_path, {azure_user(): token}, no_retain_rules(256_000), acl=acl, persistence=True
    )
    assert retained_publish_is_refused(b, *ADMIN)  # the hub refuses retain; so does this broker
    profile = AzureProfile(
        PREFIX, hub=AZURE_HUB, device_id=AZURE_DEVICE, device_key=AZURE_KEY, clock=lambda: T0
    )
    cfg = settings(b, version="3.1.1")
    got, on_command = await _commands()
    async with (
        open_outbox(tmp_path / "o.db") as ob,
        Subscriber(b, f"{EVENTS}#", username=ADMIN[0], password=ADMIN[1], clean=False) as sub,
        Subscriber(
            b, "$iothub/methods/res/#", username=ADMIN[0], password=ADMIN[1], client_id="svc"
        ) as replies,
        running_profile(cfg, ob, profile, on_command) as up,  # type: ignore[arg-type]
    ):
        await ob.put("status", b'{"state":"x"}', DeliveryClass.BUSINESS, retain=True)
        await put_sale_and_telemetry(ob, 10)
        await sub.wait_for(lambda m: len(sales_seen(m, EVENTS)) >= 10)
        c2d = f"devices/{AZURE_DEVICE}/messages/devicebound/%24.to=%2Fdevices%2Fgw-001&cmd=ping"
        sub._client.publish(c2d, b'{"id":"c1"}', qos=1)
        sub._client.publish("$iothub/methods/POST/ping/?$rid=42", b'{"id":"c2"}', qos=0)
        async with asyncio.timeout(10):
            assert [await got.get(), await got.get()] == [
                ("ping", b'{"id":"c1"}'),
                ("ping", b'{"id":"c2"}'),
            ]
        answer = await replies.wait_for(lambda m: len(m) >= 1)
        assert answer[0].topic == "$iothub/methods/res/202/?$rid=42"
        await _restart_and_refill(b, ob, up)
        msgs = await sub.wait_for(lambda m: len(sales_seen(m, EVENTS)) >= 30)
    assert sorted(set(sales_seen(msgs, EVENTS))) == list(range(30))
    kinds = {_props(m.topic)["topic"] for m in msgs}
    assert kinds == {f"{PREFIX}/status", f"{PREFIX}/events/sales", f"{PREFIX}/telemetry"}
    assert all(_props(m.topic)["$.ct"] == "application/json" for m in msgs)
    assert not any(m.retain for m in msgs)
    births = [json.loads(m.payload) for m in msgs if _props(m.topic)["topic"].endswith("/status")]
    assert sum(1 for body in births if body["state"] == "online") >= 2  # one per connect
    log = b.log_text()
    assert "Denied" not in log
    assert "not authorised" not in log.lower()


async def test_azure_token_is_renewed_before_expiry_without_loss(
    broker: Broker, tmp_path: Path
) -> None:
    now = [T0]
    profile = AzureProfile(
        PREFIX,
        hub=AZURE_HUB,
        device_id=AZURE_DEVICE,
        device_key=AZURE_KEY,
        token_ttl=3600,
        clock=lambda: now[0],
    )
    cfg = settings(broker, version="3.1.1", renew_check=0.02)
    async with (
        LogWatch("renewing the credentials").attached() as renewed,
        open_outbox(tmp_path / "o.db") as ob,
        Subscriber(broker, f"{EVENTS}#") as sub,
        running_profile(cfg, ob, profile) as up,
    ):
        await put_sale_and_telemetry(ob, 10)
        await sub.wait_for(lambda m: len(sales_seen(m, EVENTS)) >= 10)
        assert up._login is not None
        assert up._login.password == azure_token(1_700_003_600)
        assert up._login.renew_at is not None
        assert up._login.renew_at == 1_700_003_600 - 120  # two minutes before `se`
        now[0] = up._login.renew_at  # the wall clock reaches the renewal time
        producer = asyncio.create_task(put_sale_and_telemetry(ob, 50, start=10), name="t:put")
        async with asyncio.timeout(10):
            await renewed.seen.wait()
        await producer
        msgs = await sub.wait_for(lambda m: len(sales_seen(m, EVENTS)) >= 60)
        assert up._login.password == azure_token(1_700_003_600 - 120 + 3600)
        assert up.stats()["connects"] == 2
    assert sorted(set(sales_seen(msgs, EVENTS))) == list(range(60))


async def test_aliyun_signed_login_custom_topics_command_and_restart(
    tmp_path: Path, cloud_broker: Callable[..., CloudBroker]
) -> None:
    user = f"{ALIYUN['dn']}&{ALIYUN['pk']}"
    password = "37238381699564b6f84a033b53bcbd5e3866eb681a0f59549c00688d9fac77f0"  # §6.5
    assert aliyun_password(1_700_000_000_000) == password
    base = f"/{ALIYUN['pk']}/{ALIYUN['dn']}/user"
    acl = (
        f"user {ADMIN[0]}\ntopic readwrite #\n\n"
        f"user {user}\ntopic write {base}/#\ntopic read {base}/cmd/+\n"
    )
    b = cloud_broker(
        tmp_path, {user: password}, no_retain_rules(256_000), acl=acl, persistence=True
    )
    assert retained_publish_is_refused(b, *ADMIN)
    profile = AliyunProfile(
        PREFIX,
        product_key=ALIYUN["pk"],
        device_name=ALIYUN["dn"],
        device_secret=ALIYUN["secret"],
        client_id=ALIYUN["dn"],
        secure_mode=2,
        clock=lambda: T0,
    )
    got, on_command = await _commands()
    async with (
        open_outbox(tmp_path / "o.db") as ob,
        Subscriber(b, f"{base}/#", username=ADMIN[0], password=ADMIN[1], clean=False) as sub,
        running_profile(settings(b, version="3.1.1"), ob, profile, on_command) as up,  # type: ignore[arg-type]
    ):
        await ob.put("status", b'{"state":"x"}', DeliveryClass.BUSINESS, retain=True)
        await put_sale_and_telemetry(ob, 10)
        await sub.wait_for(lambda m: len(sales_seen(m, f"{base}/events/sales")) >= 10)
        sub._client.publish(f"{base}/cmd/ping", b'{"id":"c1"}', qos=1)
        async with asyncio.timeout(10):
            assert await got.get() == ("ping", b'{"id":"c1"}')
        await _restart_and_refill(b, ob, up)
        msgs = await sub.wait_for(lambda m: len(sales_seen(m, f"{base}/events/sales")) >= 30)
    assert sorted(set(sales_seen(msgs, f"{base}/events/sales"))) == list(range(30))
    ours = {m.topic for m in msgs} - {f"{base}/cmd/ping"}  # the cloud's own command
    assert ours == {f"{base}/status", f"{base}/events/sales", f"{base}/telemetry"}
    assert not any(m.retain for m in msgs)
    log = b.log_text()
    cid = f"{ALIYUN['dn']}|securemode=2,signmethod=hmacsha256,timestamp=1700000000000|"
    assert f"as {cid} " in log
    assert "Will message specified" not in log  # the platform takes no will
    assert "Denied" not in log


def test_aliyun_property_post_is_alink_json() -> None:
    from gateway.outbox import Stored

    profile = AliyunProfile(
        PREFIX,
        product_key=ALIYUN["pk"],
        device_name=ALIYUN["dn"],
        device_secret=ALIYUN["secret"],
        client_id=ALIYUN["dn"],
        property_post=True,
    )
    body = {"device": "meter-a", "metrics": {"power_kw": {"last": 1.5}, "e.kwh": {"last": 7}}}
    payload = json.dumps(body).encode()
    stored = Stored(7, "telemetry", payload, DeliveryClass.TELEMETRY, retain=False, created=2.0)
    (out,) = profile.outgoing(stored)
    assert out.topic == f"/sys/{ALIYUN['pk']}/{ALIYUN['dn']}/thing/event/property/post"
    alink = json.loads(out.payload)
    assert alink == {
        "id": "7",
        "version": "1.0",
        "params": {
            "meter_a_power_kw": {"value": 1.5, "time": 2000},
            "meter_a_e_kwh": {"value": 7, "time": 2000},
        },
        "method": "thing.event.property.post",
    }
    sale = Stored(8, "events/sales", b"{}", DeliveryClass.BUSINESS, retain=True, created=2.0)
    (out,) = profile.outgoing(sale)
    assert (out.topic, out.retain) == (f"/{ALIYUN['pk']}/{ALIYUN['dn']}/user/events/sales", False)


async def test_aws_alpn_is_offered_on_port_443_style_tls(pki: Pki, tmp_path: Path) -> None:
    import ssl

    from gateway.clouds.aws import ALPN

    seen: asyncio.Queue[str | None] = asyncio.Queue()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(pki.server_cert, pki.server_key)
    server_ctx.set_alpn_protocols([ALPN])

    async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await seen.put(w.get_extra_info("ssl_object").selected_alpn_protocol())
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    cfg = settings(
        port, tls_ca=pki.ca, tls_cert=pki.client_cert, tls_key=pki.client_key, alpn=(ALPN,)
    )
    try:
        async with (
            open_outbox(tmp_path / "o.db") as ob,
            running_profile(cfg, ob, AwsProfile(PREFIX, "thing")),
        ):
            async with asyncio.timeout(10):
                assert await seen.get() == ALPN
    finally:
        server.close()
        await server.wait_closed()
