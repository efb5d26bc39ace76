"""Test peers for the cloud profiles: mosquitto set up to behave like each cloud where it
matters, credentials computed independently from protocols.md §6, and an outbox filler.

- AWS IoT Core: mutual TLS (the shared test PKI), QoS ≤ 1.
- Azure IoT Hub and Alibaba Cloud IoT: a password file holding the computed credentials,
  `retain_available false` (mosquitto disconnects a client that publishes a retained
  message: the refusal), `max_qos 1`, and the cloud's message size limit.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gateway.outbox import DeliveryClass
from gateway.uplink import Uplink
from tests.broker import Broker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    import paho.mqtt.client as paho

    from gateway.clouds.base import Profile
    from gateway.outbox import Outbox
    from gateway.uplink import MqttSettings

ADMIN = ("cloud-admin", "admin-pw")

# protocols.md §6.4 and §6.5 worked examples (fake keys).
AZURE_HUB = "mystore-hub.azure-devices.net"
AZURE_DEVICE = "gw-001"
AZURE_KEY = "bm90LWEtcmVhbC1kZXZpY2Uta2V5LTMyLWJ5dGVzISE="
ALIYUN = {"pk": "a1B2c3D4e5F", "dn": "shelf-gw-01", "secret": "0123456789abcdef0123456789abcdef"}


def azure_token(expiry: int) -> str:
    """The SAS token, from the formula in protocols.md §6.4 (written apart from the gateway's)."""
    sr = f"{AZURE_HUB}/devices/{AZURE_DEVICE}".replace("/", "%2F")
    mac = hmac.new(base64.b64decode(AZURE_KEY), f"{sr}\n{expiry}".encode(), hashlib.sha256)
    sig = quote(base64.b64encode(mac.digest()).decode(), safe="")
    return f"SharedAccessSignature sr={sr}&sig={sig}&se={expiry}"


def azure_user() -> str:
    """The hub user name."""
    return f"{AZURE_HUB}/{AZURE_DEVICE}/?api-version=2021-04-12"


def aliyun_password(timestamp_ms: int) -> str:
    """hex(HMAC-SHA256(secret, sorted name+value pairs)), protocols.md §6.5."""
    content = (
        f"clientId{ALIYUN['dn']}deviceName{ALIYUN['dn']}productKey{ALIYUN['pk']}"
        f"timestamp{timestamp_ms}"
    )
    return hmac.new(ALIYUN["secret"].encode(), content.encode(), hashlib.sha256).hexdigest()


class CloudBroker(Broker):
    """mosquitto plus the cloud's rules (`extra` config lines appended)."""

    def __init__(self, dir: Path, *, extra: list[str], **kw: Any) -> None:  # noqa: A002
        self.extra = extra
        super().__init__(dir, **kw)

    def _write_config(self) -> None:
        super()._write_config()
        with self.conf.open("a") as f:
            f.write("\n".join(self.extra) + "\n")

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads its password file."""
        assert self._proc is not None
        self._proc.send_signal(1)


def no_retain_rules(max_size: int) -> list[str]:
    """Azure / Aliyun: retained messages refused, QoS ≤ 1, the size limit, QoS 0 queued."""
    return [
        "retain_available false",
        "max_qos 1",
        f"message_size_limit {max_size}",
        # Keeps QoS 0 messages for the test's persistent cloud subscriber (Sparkplug).
        "queue_qos0_messages true",
    ]


def make_cloud_broker(tmp: Path, users: dict[str, str], extra: list[str], **kw: Any) -> CloudBroker:
    """A started CloudBroker with `users` (plus the cloud-side admin) in its password file."""
    b = CloudBroker(tmp, extra=extra, users={**users, ADMIN[0]: ADMIN[1]}, **kw)
    b.start()
    return b


def retained_publish_is_refused(broker: Broker, username: str, password: str) -> bool:
    """Whether the broker drops a client that publishes a retained message."""
    code = f"""
import paho.mqtt.client as m, sys, threading
from paho.mqtt.enums import CallbackAPIVersion
gone = threading.Event()
c = m.Client(CallbackAPIVersion.VERSION2, client_id="probe")
c.username_pw_set({username!r}, {password!r})
c.on_disconnect = lambda *a: gone.set()
c.connect("127.0.0.1", {broker.port})
c.loop_start()
c.publish("probe/retained", b"x", qos=1, retain=True)
sys.exit(0 if gone.wait(5) else 1)
"""
    return subprocess.run([sys.executable, "-c", code], check=False, timeout=20).returncode == 0


async def put_sale_and_telemetry(ob: Outbox, n: int, start: int = 0) -> None:
    """`n` sales and `n` telemetry windows of device meter-a."""
    for i in range(start, start + n):
        sale = {"device": "till-1", "txn": i, "sku": "0012345", "qty": "1", "price": "0.99"}
        await ob.put("events/sales", json.dumps(sale).encode(), DeliveryClass.BUSINESS)
        window = {"start": "2026-12-02T10:00:00.000Z", "end": "2026-12-02T10:01:00.000Z"}
        metrics = {"power_kw": {"unit": "kW", "count": 6, "min": 1.0, "max": 2.0, "mean": 1.5}}
        metrics["power_kw"] |= {"last": float(i), "sum": 9.0}
        body = {"device": "meter-a", "driver": "sim_meter", "window": window, "metrics": metrics}
        await ob.put("telemetry", json.dumps(body).encode(), DeliveryClass.TELEMETRY)


@contextlib.asynccontextmanager
async def running_profile(
    cfg: MqttSettings,
    outbox: Outbox,
    profile: Profile,
    on_command: Callable[[str, bytes], Awaitable[None]] | None = None,
) -> AsyncIterator[Uplink]:
    """An uplink speaking `profile`, as a named task cancelled (and awaited) on exit."""

    async def ignore(_name: str, _payload: bytes) -> None:
        return None

    up = Uplink(
        cfg,
        outbox,
        birth=lambda: {"state": "online"},
        on_command=on_command or ignore,
        profile=profile,
    )
    task = asyncio.create_task(up.run(), name="uplink")
    try:
        yield up
    finally:
        task.cancel()
        async with asyncio.timeout(5):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def sales_seen(msgs: list[paho.MQTTMessage], topic: str) -> list[int]:
    """The `txn` of every sale received on `topic` (prefix match), in order."""
    return [
        json.loads(m.payload)["txn"]
        for m in msgs
        if m.topic.startswith(topic) and b'"txn"' in m.payload
    ]
