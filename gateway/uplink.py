"""The MQTT uplink: one connection to the broker, draining the outbox, receiving commands.

Every aiomqtt call of the daemon lives in this module (style.md §11), which is why it is
longer than 400 lines: splitting it would spread aiomqtt's workarounds over two files.
Delivery is QoS 1, at least once: a message leaves the outbox only after its PUBACK.
The drain publishes through paho directly (aiomqtt's `publish` costs a task, an event
and a scan of every pending call per message) and keeps a window of `inflight` messages
in a `Flight` (`gateway/uplink_acks.py`), which paho's `on_publish` — fired for QoS 1 on
the PUBACK — completes; so throughput does not depend on the round-trip time. A PUBACK
with an MQTT 5 failure reason code keeps the message (counted in `refused`); on a
disconnect the outbox is released and the oldest un-acknowledged message is sent first
again. Birth, replies and `publish_now` go through aiomqtt's `publish`.

What is published where is the cloud profile's business (`gateway/clouds/`): its login
(renewed by reconnecting before `Login.renew_at`), will, birth, subscriptions, the topic
of each outbox message and the commands found in incoming messages. A profile that needs
its messages on the wire in the order it numbered them (Sparkplug's `seq`) gets a window
of one.

Every wait on aiomqtt is bounded here with `asyncio.timeout()`, never with aiomqtt's own
`timeout=`: aiomqtt 2.5.1 implements that with `asyncio.wait_for`, which on Python 3.11
returns normally when a cancellation arrives in the same loop iteration as the PUBACK or
CONNACK (CPython gh-86296, fixed in 3.12). The cancelled task then ran on: a commands
task cancelled mid-NBIRTH went back to waiting for messages and held the ended session's
TaskGroup open for ever (no reconnect, no shutdown). The client is built with
`timeout=math.inf`, which makes aiomqtt await the confirmation directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import time
from typing import TYPE_CHECKING, Any, TypeVar, cast

import aiomqtt
import paho.mqtt.client as paho_client
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.backoff import Backoff
from gateway.clouds.base import Out, Profile, SessionEnded
from gateway.outbox import DeliveryClass, Stored
from gateway.payloads import Stamper, encode
from gateway.uplink_acks import FastAcks, Flight
from gateway.uplink_link import (
    Link,
    LinkState,
    MqttSettings,
    PahoErrors,
    describe,
    log,
    tls_context,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from paho.mqtt.reasoncodes import ReasonCode

    from gateway.clouds.base import Login
    from gateway.outbox import Outbox

__all__ = ["MqttSettings", "Uplink"]

_GRACE = 2.0  # seconds to finish in-flight acks at shutdown (inside systemd's stop timeout)
_STABLE = 30.0  # a connection that lasted this long resets the backoff exponent
_ACK_SLACK = 4  # acknowledged-but-not-yet-deleted messages allowed, in windows
# A PUBACK later than this (or 2·keepalive) ends the session, and the message is resent
# after reconnecting. Generous: a full window of large messages on a slow link is normal,
# a broker that keeps the link alive but never acknowledges is not.
_ACK_WAIT_MIN = 60.0


_T = TypeVar("_T")


async def _bounded(call: Awaitable[_T], seconds: float, what: str) -> _T:
    """Await an aiomqtt call for at most `seconds`; a timeout becomes an `MqttError`.

    `asyncio.timeout` keeps a cancellation that races the call's completion (see the
    module docstring); the MqttError keeps the callers' one error path for a dead link.
    """
    try:
        async with asyncio.timeout(seconds):
            return await call
    except TimeoutError:
        raise aiomqtt.MqttError(f"{what} within {seconds:g}s") from None


class Uplink:
    """Connects, publishes birth, subscribes `P/cmd/+`, drains the outbox; reconnects."""

    def __init__(
        self,
        cfg: MqttSettings,
        outbox: Outbox,
        *,
        birth: Callable[[], dict[str, Any]],
        on_command: Callable[[str, bytes], Awaitable[None]],
        profile: Profile | None = None,
    ) -> None:
        self._cfg = cfg
        self._profile = profile or Profile(
            cfg.prefix, cfg.client_id, username=cfg.username, password=cfg.password
        )
        self._outbox = outbox
        self._birth = birth
        self._on_command = on_command
        self._stamper = Stamper(cfg.gw)
        self._link = Link(cfg)
        self._paho_errors = PahoErrors()
        self._client: aiomqtt.Client | None = None
        self._login: Login | None = None
        self._lost = False
        self._acked: list[int] = []
        self._ack_wake = asyncio.Event()
        self._unacked = asyncio.Semaphore(cfg.inflight * _ACK_SLACK)
        self._ack_wait = max(_ACK_WAIT_MIN, 2.0 * cfg.keepalive)
        self._flight: Flight | None = None
        self._refusals: set[str] = set()  # reason codes already logged this session

    @property
    def connected(self) -> bool:
        """Whether the broker accepted our CONNECT and the link is up."""
        return self._link.state is LinkState.CONNECTED

    def stats(self) -> dict[str, Any]:
        """State, connects, disconnects, last error, publishes, acks, in flight, RTT."""
        return {**self._link.stats(), "inflight": len(self._flight or ())}

    @property
    def profile(self) -> Profile:
        """The cloud profile this uplink speaks."""
        return self._profile

    async def run(self) -> None:
        """Forever: connect, birth, subscribe, drain; reconnect with backoff on loss."""
        backoff = Backoff(self._cfg.reconnect_initial, self._cfg.reconnect_max)
        while True:
            try:
                client = await self._connect()
            except (aiomqtt.MqttError, OSError, ValueError) as exc:
                self._link.down(describe(exc, self._cfg, self._paho_errors.take()))
            else:
                self._link.up()
                started = time.monotonic()
                reason, renew = "disconnected", False
                try:
                    reason, renew = await self._serve(client)
                finally:
                    await self._after_session(client)
                self._link.down(reason)
                if time.monotonic() - started > _STABLE:
                    backoff.reset()
                if renew:
                    continue  # a planned reconnect (fresh credentials): no backoff
            await asyncio.sleep(backoff.next_delay())

    async def _connect(self) -> aiomqtt.Client:
        cfg = self._cfg
        v5 = cfg.version == "5"
        props = None
        clean = cfg.clean_start if self._profile.clean_start is None else self._profile.clean_start
        if v5:
            # MQTT 5 §3.1.2.11.2: without a Session Expiry Interval the session ends with
            # the connection, and commands sent while we are offline would be lost.
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            # Sparkplug 3.0 §5.4 (a profile forcing a clean session): session expiry 0.
            expiry = 0 if self._profile.clean_start else cfg.session_expiry
            props.SessionExpiryInterval = expiry
        # Loading certificate files blocks: keep it off the event loop.
        tls = await asyncio.to_thread(tls_context, cfg) if cfg.tls else None
        self._login = login = self._profile.login()
        last = self._profile.will(encode(self._stamper.stamp({"state": "offline"})))
        will = (
            None if last is None else aiomqtt.Will(last.topic, last.payload, last.qos, last.retain)
        )
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=login.username,
            password=login.password,
            identifier=login.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            will=will,
            # paho refuses clean_session with MQTT 5, which uses clean_start instead.
            clean_session=None if v5 else clean,
            # ... and refuses clean_start (other than its default) with 3.1.1.
            clean_start=clean if v5 else paho_client.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
            # No aiomqtt timeouts: every call is bounded by `_bounded` (module docstring).
            timeout=math.inf,
            keepalive=cfg.keepalive,  # paho closes a half-dead link after keepalive·1.5
            tls_context=tls,
            max_queued_incoming_messages=1000,  # bounded: commands are few and small
            # Unlimited in paho: the drain keeps its own window (`Flight`), and paho's
            # limit costs a scan of every message in flight per PUBACK.
            max_inflight_messages=0,
            logger=self._paho_errors.logger,
        )
        client._client.__class__ = FastAcks
        # paho's own TCP connect + TLS handshake timeout (5 s by default).
        client._client.connect_timeout = cfg.connect_timeout
        self._hook_acks(client)
        try:
            # paho's TCP connect + TLS handshake (its own connect_timeout, above), then the
            # CONNACK wait: a silent broker times out here.
            await _bounded(client.__aenter__(), 2 * cfg.connect_timeout, "CONNECT timed out")
        except BaseException:
            _abandon(client)
            raise
        # paho leaves Nagle on, which holds a small packet back ~40 ms waiting for the
        # previous one's ACK: every PUBLISH and PUBACK here is small.
        sock = client._client.socket()
        if isinstance(sock, socket.socket):  # ssl.SSLSocket is one too
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client

    async def _serve(self, client: aiomqtt.Client) -> tuple[str, bool]:
        """Subscribe, birth, then receive and drain until the session ends.

        Returns why it ended, and whether it was a planned end (reconnect at once).
        """
        self._client, self._lost = client, False
        self._paho_errors.take()
        self._refusals.clear()
        limit = 1 if self._profile.ordered else self._cfg.inflight
        self._flight = flight = Flight(limit, self._on_acked, self._on_refused)
        session = _Session(self, client)
        reason, renew = "disconnected", False
        try:
            for topic, qos in self._profile.subscriptions():
                await _bounded(
                    client.subscribe(topic, qos=qos), self._cfg.connect_timeout, "no SUBACK"
                )
            body = self._birth()
            birth = body if "id" in body else self._stamper.stamp(body)
            await self._profile.start(session, encode(birth))
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._commands(client, session), name="uplink:commands")
                tg.create_task(self._drain(client, flight), name="uplink:drain")
                tg.create_task(self._ack_loop(), name="uplink:acks")
                tg.create_task(self._profile.watch(session), name="uplink:profile")
                tg.create_task(self._watch_acks(flight), name="uplink:overdue")
                if self._login is not None and self._login.renew_at is not None:
                    tg.create_task(self._renew(self._login.renew_at), name="uplink:renew")
        except* aiomqtt.MqttError as group:
            reason = describe(group.exceptions[0], self._cfg, self._paho_errors.take())
        except* SessionEnded as group:
            reason, renew = str(group.exceptions[0]), True
        finally:
            # A message the broker still hands us belongs to a session that has ended.
            session.close()
        return reason, renew

    async def _renew(self, renew_at: float) -> None:
        """End the session before the credentials expire (Azure SAS tokens)."""
        clock = self._profile.clock
        # Re-read the wall clock now and then rather than sleeping once: a gateway without
        # a real-time clock may step its time (NTP) while connected.
        while (left := renew_at - clock()) > 0:  # noqa: ASYNC110 - polls the wall clock
            await asyncio.sleep(min(left, self._cfg.renew_check))
        raise SessionEnded("renewing the credentials before they expire")

    async def _after_session(self, client: aiomqtt.Client) -> None:
        """Record acks, hand un-acked messages back to the outbox, disconnect."""
        self._client = self._flight = None
        if not self._lost:
            # A clean DISCONNECT fires no will: Sparkplug publishes its NDEATH itself.
            with contextlib.suppress(TimeoutError, aiomqtt.MqttError):
                async with asyncio.timeout(_GRACE):
                    await self._profile.stop(_Session(self, client))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_GRACE):
                await self._flush_acks()
        self._outbox.release()
        try:
            async with asyncio.timeout(_GRACE):
                await client.__aexit__(None, None, None)
        except (aiomqtt.MqttError, TimeoutError):
            pass
        finally:
            _abandon(client)

    async def _commands(self, client: aiomqtt.Client, session: _Session) -> None:
        try:
            async for message in client.messages:
                if session.closed:
                    return
                raw = message.payload
                payload = raw if isinstance(raw, bytes) else str(raw or "").encode()
                inbound = await self._profile.incoming(session, str(message.topic), payload)
                if inbound is None:
                    continue
                for reply in inbound.replies:
                    await session.publish(reply)
                try:
                    await self._on_command(inbound.name, inbound.payload)
                except Exception:
                    # A handler's bug must not take the link down (design.md "Principles").
                    log.exception("Command handler for %r failed", inbound.name)
        except aiomqtt.MqttError:
            self._lost = True
            raise

    async def _drain(self, client: aiomqtt.Client, flight: Flight) -> None:
        """Publish outbox messages through paho, at most `flight.limit` awaiting PUBACK.

        paho directly, not `aiomqtt.Client.publish`: aiomqtt makes a task, an event and a
        scan of every pending call per message, which held the drain to ~6,000 msgs/s; here a
        message costs paho's `publish` and one dict entry (`Flight`), and paho's
        `on_publish` (`_hook_acks`) finishes it.
        """
        paho = client._client
        try:
            while True:
                for message in await self._outbox.next_batch(self._cfg.inflight):
                    await self._unacked.acquire()
                    while not flight.room.is_set():
                        await flight.room.wait()
                    await self._profile.gate()
                    outs = self._profile.outgoing(message)
                    if not outs:  # the profile sends nothing for it: done
                        self._queue_ack(message.seq)
                        continue
                    problem = self._unsendable(outs)
                    if problem is not None:
                        # The producer should never make these; no broker would take them.
                        log.error("Dropped outbox message for %r: %s", message.topic, problem)
                        self._queue_ack(message.seq)
                        continue
                    mids: list[int] = []
                    try:
                        for out in outs:
                            info = paho.publish(out.topic, out.payload, out.qos, out.retain)
                            if info.rc != paho_client.MQTT_ERR_SUCCESS:
                                # The link is going down: kept in the outbox, sent again.
                                raise aiomqtt.MqttCodeError(info.rc, "Could not publish")
                            mids.append(info.mid)
                    finally:
                        flight.add(message.seq, mids, time.monotonic())
                        self._link.publishes += 1
        except asyncio.CancelledError:
            if flight and not self._lost:  # shutdown: let in-flight PUBACKs arrive
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_GRACE):
                        await flight.empty.wait()
            raise
        finally:
            # Left in flight: not acknowledged, so kept in the outbox and sent again.
            for _ in range(flight.close()):
                self._unacked.release()

    def _unsendable(self, outs: list[Out]) -> str | None:
        """Why these MQTT messages can never be delivered (counted), or None."""
        for out in outs:
            if len(out.payload) > self._cfg.max_payload:
                # design.md: payloads under 128 KB, the broker contract.
                self._link.too_large += 1
                return f"{len(out.payload)} bytes, over max_payload {self._cfg.max_payload}"
            try:
                topic = out.topic.encode()
            except UnicodeEncodeError:
                topic = b""
            # MQTT §4.7: no wildcards or U+0000 in a topic name, 1-65535 bytes of UTF-8.
            if not 0 < len(topic) <= 0xFFFF or b"+" in topic or b"#" in topic or b"\0" in topic:
                self._link.invalid_topic += 1
                return f"invalid MQTT topic {out.topic!r}"
        return None

    def _hook_acks(self, client: aiomqtt.Client) -> None:
        """Route paho's `on_publish` for the drain's messages to the session's `Flight`."""
        paho = client._client
        # aiomqtt's (VERSION2 signature), for its own publish() calls: birth, acks of commands.
        theirs = cast("Callable[..., None]", paho.on_publish)

        def on_publish(
            c: paho_client.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
        ) -> None:
            flight = self._flight
            failure = reason.getName() if reason.is_failure else None
            if flight is None or not flight.done(mid, failure, time.monotonic()):
                theirs(c, userdata, mid, reason, props)

        paho.on_publish = on_publish

    def _on_acked(self, seq: int, rtt: float) -> None:
        self._link.rtts.append(rtt)
        self._link.acks += 1
        self._queue_ack(seq)

    def _on_refused(self, seq: int, reason: str) -> None:
        """The broker answered with a failure reason code: keep the message, say so once."""
        self._link.refused[reason] = self._link.refused.get(reason, 0) + 1
        self._unacked.release()
        if reason not in self._refusals:
            self._refusals.add(reason)
            log.warning(
                "The broker refused outbox message %d (%s): kept, sent again after reconnecting",
                seq,
                reason,
            )

    async def _watch_acks(self, flight: Flight) -> None:
        """End the session when a PUBACK is overdue (the message stays in the outbox)."""
        while True:
            oldest = flight.oldest()
            if oldest is None:
                await flight.busy.wait()
                continue
            left = oldest + self._ack_wait - time.monotonic()
            if left <= 0:
                raise aiomqtt.MqttError(f"no PUBACK within {self._ack_wait:g}s")
            await asyncio.sleep(left)

    def _queue_ack(self, seq: int) -> None:
        self._acked.append(seq)
        self._ack_wake.set()

    async def _ack_loop(self) -> None:
        while True:
            await self._ack_wake.wait()
            self._ack_wake.clear()
            await self._flush_acks()

    async def _flush_acks(self) -> None:
        while self._acked:
            seqs, self._acked = self._acked, []
            try:
                await self._outbox.ack(seqs)
            finally:
                # The outbox queued the deletes before awaiting: they commit either way.
                for _ in seqs:
                    self._unacked.release()

    async def publish_now(
        self, topic_suffix: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> bool:
        """Publish directly (no outbox), for status-like messages; False when offline."""
        client = self._client
        if client is None or not self.connected or len(payload) > self._cfg.max_payload:
            return False
        message = Stored(0, topic_suffix, payload, DeliveryClass.TELEMETRY, retain, time.time())
        try:
            for out in self._profile.outgoing(message):
                publish = client.publish(
                    out.topic, out.payload, qos=min(qos, out.qos), retain=out.retain
                )
                await _bounded(publish, self._cfg.connect_timeout, "no PUBACK")
        except aiomqtt.MqttError:
            return False
        return True


class _Session:
    """The uplink as a profile sees it during one connection (`gateway.clouds.base.Session`)."""

    def __init__(self, uplink: Uplink, client: aiomqtt.Client) -> None:
        self._uplink = uplink
        self._client = client
        self.closed = False

    def close(self) -> None:
        """The session has ended: it publishes and handles nothing more."""
        self.closed = True

    async def publish(self, out: Out) -> None:
        """Publish now, waiting for the PUBACK (QoS 1) at most `connect_timeout`."""
        if self.closed:
            raise aiomqtt.MqttError(f"publish to {out.topic!r} after the session ended")
        publish = self._client.publish(out.topic, out.payload, qos=out.qos, retain=out.retain)
        await _bounded(publish, self._uplink._cfg.connect_timeout, "no PUBACK")

    def stamp(self, body: dict[str, Any]) -> bytes:
        """`body` with the envelope, encoded."""
        return encode(self._uplink._stamper.stamp(body))

    async def dispatch(self, name: str, payload: bytes) -> None:
        """To the command router."""
        await self._uplink._on_command(name, payload)


def _abandon(client: aiomqtt.Client) -> None:
    """Close paho's socket if aiomqtt left it open.

    aiomqtt 2.5.1's `__aenter__` leaves the socket open (reader registered, misc task
    running) when the CONNACK wait times out or is cancelled; closing it here means no file
    descriptor or task outlives a failed attempt.
    """
    paho = client._client
    if paho.socket() is not None:
        paho._sock_close()
