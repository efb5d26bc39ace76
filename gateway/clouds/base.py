"""What a cloud profile decides for the uplink: login, topics, will, birth, commands, gates.

A profile is the IO-free half of one broker dialect (`mqtt.profile`, `mqtt.format`): it
maps outbox messages to MQTT messages (`Out`) and incoming MQTT messages to commands, and
says what to publish around a session. The uplink (`gateway/uplink.py`, which holds every
aiomqtt call) carries the messages out. `Profile` itself is the `generic` profile:
storegw's own topics under the prefix, a retained birth and a retained last will
(design.md "MQTT").
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.outbox import Stored


@dataclass(frozen=True, slots=True)
class Out:
    """One MQTT message to publish: full topic, payload, QoS and retain flag."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Login:
    """CONNECT credentials; `renew_at` (wall time) asks for a new session with fresh ones."""

    client_id: str
    username: str | None = None
    password: str | None = None
    renew_at: float | None = None


@dataclass(frozen=True, slots=True)
class Inbound:
    """A command found in an incoming message, and what to answer on MQTT right away."""

    name: str
    payload: bytes
    replies: tuple[Out, ...] = ()


class SessionEnded(Exception):  # noqa: N818 - a request, not a failure
    """A profile asks the uplink to end the session and connect again (the reason is the text)."""


class Session(Protocol):
    """What the uplink offers a profile during one connection."""

    async def publish(self, out: Out) -> None:
        """Publish one message now (not through the outbox)."""

    def stamp(self, body: dict[str, Any]) -> bytes:
        """Encode `body` with the `id`/`ts`/`gw` envelope."""

    async def dispatch(self, name: str, payload: bytes) -> None:
        """Hand a command to the command router."""


class Profile:
    """The `generic` profile: storegw topics, retained birth and will, `P/cmd/+`."""

    name = "generic"
    retain_allowed = True
    ordered = False  # True: messages leave in the order `outgoing` made them (one in flight)

    def __init__(
        self,
        prefix: str,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.prefix = prefix
        self.client_id = client_id
        self.username = username
        self.password = password
        self.clock = clock
        self.clean_start: bool | None = None  # None: the `mqtt.clean_start` setting decides
        self._open = asyncio.Event()
        self._open.set()

    def topic(self, suffix: str) -> str:
        """The full topic of a storegw topic suffix (`events/sales`)."""
        return f"{self.prefix}/{suffix}"

    def login(self) -> Login:
        """Credentials for the next CONNECT."""
        return Login(self.client_id, self.username, self.password)

    def will(self, offline: bytes) -> Out | None:
        """The last will (None: this cloud takes none)."""
        return Out(self.topic("status"), offline, 1, retain=self.retain_allowed)

    def subscriptions(self) -> list[tuple[str, int]]:
        """Topic filters and QoS to subscribe after each CONNECT."""
        return [(self.topic("cmd/+"), 1)]

    async def start(self, session: Session, birth: bytes) -> None:
        """After CONNECT and SUBSCRIBE: announce ourselves."""
        await session.publish(Out(self.topic("status"), birth, 1, retain=self.retain_allowed))

    async def watch(self, session: Session) -> None:  # noqa: ARG002 - for subclasses
        """Runs for the whole session (heartbeats, renewals); raises SessionEnded to reconnect."""
        await asyncio.Event().wait()

    async def stop(self, session: Session) -> None:
        """Before an intentional DISCONNECT (a clean disconnect fires no will)."""

    async def gate(self) -> None:
        """Wait until outbox messages may be sent (always, except Sparkplug's host wait)."""
        await self._open.wait()

    def outgoing(self, message: Stored) -> list[Out]:
        """The MQTT messages carrying one outbox message (retain only where allowed)."""
        retain = message.retain and self.retain_allowed
        return [Out(self.topic(message.topic), message.payload, 1, retain)]

    async def incoming(
        self,
        session: Session,  # noqa: ARG002 - Sparkplug uses the session here
        topic: str,
        payload: bytes,
    ) -> Inbound | None:
        """The command in an incoming message, or None when it is not one of ours."""
        head, _, name = topic.rpartition("/")
        if head != self.topic("cmd"):
            return None
        return Inbound(name, payload)
