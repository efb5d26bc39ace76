"""Confirmations of the drain's QoS 1 publishes: the window in flight, and fast PUBACKs.

The uplink (`gateway/uplink.py`) publishes outbox messages through paho directly and keeps
them in a `Flight` until paho's `on_publish` reports the PUBACK; `FastAcks` is paho's
client with a short path for decoding the common PUBACK. Measured with `bench/uplink.py`
(100,000 messages to a local mosquitto, this 2-vCPU machine): aiomqtt's `publish` per
message drained 6,000-8,000 msgs/s; paho with `Flight`, 12,500-14,000; with `FastAcks`
too, 22,000-26,000. Nothing here does IO.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

import paho.mqtt.client as paho_client
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

if TYPE_CHECKING:
    from collections.abc import Callable

    from paho.mqtt.enums import MQTTErrorCode

__all__ = ["FastAcks", "Flight"]

# Almost every packet the drain reads is a PUBACK with a packet id and at most a reason
# code (MQTT 5: mosquitto says "No matching subscribers" when nobody listens). paho decodes
# each into a new ReasonCode (which copies its table of names) and a new Properties: a third
# of the drain's CPU. `FastAcks` hands out these shared, never-modified ones instead.
_PUBACK_REASONS = {
    code: ReasonCode(PacketTypes.PUBACK, identifier=code)
    for code, names in ReasonCode.names.items()
    if any(PacketTypes.PUBACK in types for types in names.values())
}
_NO_PROPERTIES = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]


class FastAcks(paho_client.Client):
    """paho's client, with a short path for the common PUBACK (`__class__` of aiomqtt's).

    Everything else — a PUBACK carrying properties (a reason string), an unknown reason
    code, a PUBCOMP, a 3.1.1 packet of the wrong size — goes through paho's own decoding.
    """

    def _handle_pubackcomp(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        size = len(packet)
        reason: ReasonCode | None = None
        if size == 2:  # the packet id alone: success
            reason = _PUBACK_REASONS[0]
        elif size == 3 and self._protocol == paho_client.MQTTv5:  # packet id + reason code
            reason = _PUBACK_REASONS.get(packet[2])
        if cmd != "PUBACK" or reason is None:
            return super()._handle_pubackcomp(cmd)
        mid = (packet[0] << 8) | packet[1]
        with self._out_message_mutex:
            if mid in self._out_messages:
                return self._do_on_publish(mid, reason, _NO_PROPERTIES)
        return paho_client.MQTT_ERR_SUCCESS


class Flight:
    """Outbox messages on the wire in one session, keyed by their MQTT packet ids.

    No task, future or timer per message: the uplink publishes through paho and paho's
    `on_publish` (which for QoS 1 fires on the PUBACK) calls `done`. One outbox message may
    be several MQTT messages (a profile's `outgoing`); it is finished when the last one is
    acknowledged, and `acked(seq, rtt)` or, when the broker refused any of them (an MQTT 5
    reason code >= 0x80), `refused(seq, reason)` is called once.
    """

    def __init__(
        self,
        limit: int,
        acked: Callable[[int, float], None],
        refused: Callable[[int, str], None],
    ) -> None:
        self.limit = limit
        self._acked = acked
        self._refused = refused
        self._seq_of: dict[int, int] = {}  # packet id -> outbox seq
        self._parts: dict[int, int] = {}  # seq -> MQTT messages not yet acknowledged
        self._sent: dict[int, float] = {}  # seq -> monotonic send time; oldest first
        self._failed: dict[int, str] = {}  # seq -> the broker's reason for refusing a part
        self.room = asyncio.Event()  # set while fewer than `limit` messages are in flight
        self.busy = asyncio.Event()  # set while any message is in flight
        self.empty = asyncio.Event()  # ... and this one while none is
        self.room.set()
        self.empty.set()
        self.closed = False

    def __len__(self) -> int:
        return len(self._sent)

    def add(self, seq: int, mids: list[int], now: float) -> None:
        """`seq` was published as the MQTT messages `mids` at `now`."""
        for mid in mids:
            self._seq_of[mid] = seq
        self._parts[seq] = len(mids)
        self._sent[seq] = now
        if len(self._sent) >= self.limit:
            self.room.clear()
        self.busy.set()
        self.empty.clear()

    def done(self, mid: int, failure: str | None, now: float) -> bool:
        """paho confirmed `mid` (`failure`: the reason code if refused); False if not ours."""
        seq = self._seq_of.pop(mid, None)
        if seq is None or self.closed:
            return seq is not None
        if failure is not None:
            self._failed[seq] = failure
        left = self._parts[seq] - 1
        if left:
            self._parts[seq] = left
            return True
        del self._parts[seq]
        sent = self._sent.pop(seq)
        reason = self._failed.pop(seq, None)
        self._settle()
        if reason is None:
            self._acked(seq, now - sent)
        else:
            self._refused(seq, reason)
        return True

    def oldest(self) -> float | None:
        """When the longest-waiting message in flight was sent (None: nothing in flight)."""
        return next(iter(self._sent.values()), None)

    def close(self) -> int:
        """The session has ended: later confirmations are ignored. Returns how many were left.

        Those messages stay in the outbox and are sent again after reconnecting.
        """
        self.closed = True
        left = len(self._sent)
        self._seq_of.clear()
        self._parts.clear()
        self._sent.clear()
        self._failed.clear()
        self._settle()
        return left

    def _settle(self) -> None:
        if len(self._sent) < self.limit:
            self.room.set()
        if not self._sent:
            self.busy.clear()
            self.empty.set()
