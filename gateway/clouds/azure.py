"""Azure IoT Hub: SAS tokens, the hub's fixed topics, presence as events (protocols.md §6.4).

The hub is not a general broker: a device publishes only on
`devices/{id}/messages/events/{property bag}`, so storegw's topic travels as the message
property `topic`; the hub refuses retain (it becomes a property) and QoS 2, and takes a last
will only on the events topic (delivered as telemetry marked `iothub-MessageType=Will`).
Presence is therefore the will plus a birth event and a periodic heartbeat on that topic
(contract.md "Config"). Commands arrive as cloud-to-device messages whose `cmd` property
names the command, or as direct methods named after it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode

from gateway.clouds.base import Inbound, Login, Out, Profile

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.clouds.base import Session
    from gateway.outbox import Stored

log = logging.getLogger(__name__)

API_VERSION = "2021-04-12"
_RENEW_MARGIN = 120.0  # seconds before `se` (the Azure device SDKs renew 2 minutes early)


def sas_token(resource: str, device_key: str, expiry: int) -> str:
    """`SharedAccessSignature sr=…&sig=…&se=…` for `resource` (`<hub>/devices/<id>`).

    protocols.md §6.4: signature = Base64(HMAC-SHA256(Base64-decoded key,
    url-encoded URI + "\\n" + expiry)), itself url-encoded in the token.
    """
    uri = quote(resource, safe="")
    signed = hmac.new(base64.b64decode(device_key), f"{uri}\n{expiry}".encode(), hashlib.sha256)
    sig = quote(base64.b64encode(signed.digest()).decode(), safe="")
    return f"SharedAccessSignature sr={uri}&sig={sig}&se={expiry}"


def username(hub: str, device_id: str, api_version: str = API_VERSION) -> str:
    """The CONNECT user name the hub expects."""
    return f"{hub}/{device_id}/?api-version={api_version}"


class AzureProfile(Profile):
    """`azure-iot-hub`: SAS or X.509 login, events topic, C2D and direct methods."""

    name = "azure-iot-hub"
    retain_allowed = False

    def __init__(
        self,
        prefix: str,
        *,
        hub: str,
        device_id: str,
        device_key: str | None,
        token_ttl: float = 3600.0,
        heartbeat: float = 300.0,
        api_version: str = API_VERSION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(prefix, device_id, clock=clock)
        self.hub = hub
        self.device_id = device_id
        self.device_key = device_key
        self.token_ttl = token_ttl
        self.heartbeat = heartbeat
        self.api_version = api_version
        self._events = f"devices/{device_id}/messages/events/"
        self._c2d = f"devices/{device_id}/messages/devicebound/"

    def login(self) -> Login:
        """Device id, hub user name and a fresh SAS token (none with an X.509 certificate)."""
        user = username(self.hub, self.device_id, self.api_version)
        if self.device_key is None:
            return Login(self.device_id, user, None)
        expiry = int(self.clock() + self.token_ttl)
        token = sas_token(f"{self.hub}/devices/{self.device_id}", self.device_key, expiry)
        renew_at = expiry - min(_RENEW_MARGIN, self.token_ttl / 4)
        return Login(self.device_id, user, token, renew_at)

    def event(self, suffix: str, payload: bytes) -> Out:
        """A device-to-cloud message carrying storegw topic `prefix/suffix` as a property."""
        bag = urlencode(
            {"topic": self.topic(suffix), "$.ct": "application/json", "$.ce": "utf-8"},
            quote_via=quote,
            safe="",
        )
        return Out(self._events + bag, payload, 1, retain=False)

    def will(self, offline: bytes) -> Out | None:
        """The will, on the events topic (the only one the hub accepts for it)."""
        return self.event("status", offline)

    def subscriptions(self) -> list[tuple[str, int]]:
        """Cloud-to-device messages (QoS 1) and direct methods (QoS 0: answered or lost)."""
        return [(self._c2d + "#", 1), ("$iothub/methods/POST/#", 0)]

    async def start(self, session: Session, birth: bytes) -> None:
        """The birth, as an event."""
        await session.publish(self.event("status", birth))

    async def watch(self, session: Session) -> None:
        """A heartbeat event every `heartbeat` seconds: the hub keeps no retained status."""
        while True:
            await asyncio.sleep(self.heartbeat)
            body = session.stamp({"state": "online", "heartbeat": True})
            await session.publish(self.event("status", body))

    def outgoing(self, message: Stored) -> list[Out]:
        """Every outbox message becomes an event; the retain flag cannot travel."""
        return [self.event(message.topic, message.payload)]

    async def incoming(
        self,
        session: Session,  # noqa: ARG002 - Sparkplug uses the session here, not Azure
        topic: str,
        payload: bytes,
    ) -> Inbound | None:
        """C2D messages (property `cmd`) and direct methods (`$iothub/methods/POST/<name>/`)."""
        if topic.startswith(self._c2d):
            props = dict(parse_qsl(topic[len(self._c2d) :], keep_blank_values=True))
            name = props.get("cmd")
            if not name:
                log.warning("Ignored a cloud-to-device message without a 'cmd' property")
                return None
            return Inbound(name, payload)
        if topic.startswith("$iothub/methods/POST/"):
            name, _, query = topic[len("$iothub/methods/POST/") :].partition("/")
            rid = dict(parse_qsl(query.lstrip("?"))).get("$rid", "")
            # A method call waits for its answer (30 s by default): answer at once; the
            # command's outcome follows as its `cmd/<name>/ack` event, like every ack.
            body = {"status": "received", "ack_topic": self.topic(f"cmd/{name}/ack")}
            reply = Out(f"$iothub/methods/res/202/?$rid={rid}", json.dumps(body).encode(), 0)
            return Inbound(name, payload, (reply,))
        return None
