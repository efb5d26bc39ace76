"""Alibaba Cloud IoT Platform: the device-triple signature and its topics (protocols.md §6.5).

The platform takes neither retained messages nor a last will, and QoS 0/1 only; it tracks
a device's online state from its connection itself, so presence is the connection plus a
(non-retained) birth message. storegw's topics live under the product's custom topics
`/<productKey>/<deviceName>/user/…`; telemetry can instead go to the thing model's
`/sys/<productKey>/<deviceName>/thing/event/property/post` (Alink JSON).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import TYPE_CHECKING, Any, Literal

from gateway.clouds.base import Login, Out, Profile

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.outbox import Stored

SignMethod = Literal["hmacsha256", "hmacsha1", "hmacmd5"]
_DIGEST = {"hmacsha256": hashlib.sha256, "hmacsha1": hashlib.sha1, "hmacmd5": hashlib.md5}
_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")


def sign(
    product_key: str,
    device_name: str,
    device_secret: str,
    *,
    client_id: str,
    timestamp: str | None,
    sign_method: SignMethod = "hmacsha256",
    secure_mode: int = 2,
) -> tuple[str, str, str]:
    """(mqttClientId, mqttUsername, mqttPassword) for one CONNECT.

    protocols.md §6.5: the password is hex(HMAC(deviceSecret, content)), content being the
    parameter names and values sorted by name; `timestamp` only when the client id has it.
    """
    params = {"clientId": client_id, "deviceName": device_name, "productKey": product_key}
    extra = f"securemode={secure_mode},signmethod={sign_method}"
    if timestamp is not None:
        params["timestamp"] = timestamp
        extra += f",timestamp={timestamp}"
    content = "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(device_secret.encode(), content.encode(), _DIGEST[sign_method])
    return f"{client_id}|{extra}|", f"{device_name}&{product_key}", digest.hexdigest()


def identifier(text: str) -> str:
    """A thing-model identifier (letters, digits, '_') from a device and metric name."""
    return _IDENTIFIER.sub("_", text)


class AliyunProfile(Profile):
    """`aliyun-iot`: signed login, custom topics, optional thing-model property posts."""

    name = "aliyun-iot"
    retain_allowed = False

    def __init__(
        self,
        prefix: str,
        *,
        product_key: str,
        device_name: str,
        device_secret: str,
        client_id: str,
        sign_method: SignMethod = "hmacsha256",
        secure_mode: int = 2,
        timestamp: bool = True,
        property_post: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(prefix, client_id, clock=clock)
        self.product_key = product_key
        self.device_name = device_name
        self._secret = device_secret
        self._sign_method: SignMethod = sign_method
        self._secure_mode = secure_mode
        self._timestamp = timestamp
        self.property_post = property_post
        self._base = f"/{product_key}/{device_name}/user"

    def topic(self, suffix: str) -> str:
        """A custom topic: `/<productKey>/<deviceName>/user/<suffix>`."""
        return f"{self._base}/{suffix}"

    def login(self) -> Login:
        """The signed client id, `deviceName&productKey` and the HMAC password."""
        ts = str(int(self.clock() * 1000)) if self._timestamp else None
        cid, user, password = sign(
            self.product_key,
            self.device_name,
            self._secret,
            client_id=self.client_id,
            timestamp=ts,
            sign_method=self._sign_method,
            secure_mode=self._secure_mode,
        )
        return Login(cid, user, password)

    def will(self, offline: bytes) -> Out | None:  # noqa: ARG002 - the interface's argument
        """None: the platform refuses a will (it reports the disconnect itself)."""
        return None

    def outgoing(self, message: Stored) -> list[Out]:
        """Custom topics; telemetry as a property post when `property_post` is set."""
        if self.property_post and message.topic == "telemetry":
            post = self._property_post(message)
            if post is not None:
                return [post]
        return [Out(self.topic(message.topic), message.payload, 1, retain=False)]

    def _property_post(self, message: Stored) -> Out | None:
        """Alink `thing.event.property.post`: `<device>_<metric>` = the window's last value."""
        body = json.loads(message.payload)
        device = str(body.get("device", ""))
        metrics = body.get("metrics")
        if not isinstance(metrics, dict):
            return None
        when = int(message.created * 1000)
        params: dict[str, Any] = {
            identifier(f"{device}_{name}"): {"value": stats.get("last"), "time": when}
            for name, stats in metrics.items()
            if isinstance(stats, dict) and "last" in stats
        }
        # Alink message ids are decimal strings below 2**32, unique per device.
        alink = {
            "id": str(message.seq % 2**32),
            "version": "1.0",
            "params": params,
            "method": "thing.event.property.post",
        }
        topic = f"/sys/{self.product_key}/{self.device_name}/thing/event/property/post"
        return Out(topic, json.dumps(alink, separators=(",", ":")).encode(), 1)
