"""A Sparkplug B 3.0 edge node as an uplink profile (protocols.md §6.1; contract.md).

Session rules (Sparkplug 3.0 §5): every CONNECT is a clean session whose will is NDEATH
carrying a fresh `bdSeq` (0-255, +1 per CONNECT); NCMD and DCMD are subscribed before
NBIRTH; NBIRTH has `seq` 0 and the following DBIRTH/DATA count on to 255 and wrap. With a
primary host, the node also subscribes to its STATE and births only once the host says
`online` (with a timestamp not older than the last one seen); while it is not, the outbox
holds the data. A STATE `offline` after birth ends the session (NDEATH, DISCONNECT,
connect again). Data stored before this session's birth is sent with `is_historical`.
The next bdSeq is kept in `state_file` (the daemon's
`<state_dir>/sparkplug.bdseq`), so a restarted gateway goes on counting instead of starting
at 0 again: a host never pairs the new NBIRTH with the old session's NDEATH.
An NCMD `Node Control/Rebirth` re-sends the births with the same bdSeq; an NCMD metric
`storegw/cmd/<name>` (String) carries a storegw command, whose ack follows as the
`storegw/cmd/ack` metric. Sparkplug data is QoS 0 (best effort once published).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING

from gateway.clouds.base import Inbound, Login, Out, Profile, SessionEnded
from gateway.sparkplug import proto
from gateway.sparkplug.mapping import NODE_METRICS, device_metrics, node_metric
from gateway.sparkplug.proto import DataType, MetricValue

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from gateway.clouds.base import Session
    from gateway.outbox import Stored

log = logging.getLogger(__name__)

NAMESPACE = "spBv1.0"
REBIRTH = "Node Control/Rebirth"
_COMMAND = "storegw/cmd/"


class SparkplugNode(Profile):
    """`format: sparkplug`: births, deaths, sequence numbers, host state, commands."""

    name = "sparkplug"
    ordered = True  # seq numbers must reach the wire in the order they were given

    def __init__(
        self,
        *,
        group: str,
        edge: str,
        client_id: str,
        devices: dict[str, str],
        primary_host: str | None = None,
        username: str | None = None,
        password: str | None = None,
        clock: Callable[[], float] = time.time,
        state_file: Path | None = None,
    ) -> None:
        super().__init__(
            f"{NAMESPACE}/{group}", client_id, username=username, password=password, clock=clock
        )
        self._state_file = state_file
        self._loaded = state_file is None
        self.clean_start = True
        self.group, self.edge, self.primary_host = group, edge, primary_host
        self.bd_seq = 0
        self._next_bd = 0  # the first CONNECT carries 0
        self._seq = 0
        self._born_at = float("inf")
        self._host_ts = -1  # the newest STATE timestamp seen (ms)
        self._open.clear()
        self._node: dict[str, str | None] = dict.fromkeys(NODE_METRICS)
        self._drivers = devices
        self._devices: dict[str, dict[str, MetricValue]] = {d: {} for d in devices}

    def spb_topic(self, kind: str, device: str | None = None) -> str:
        """`spBv1.0/<group>/<kind>/<edge>[/<device>]`."""
        tail = f"/{device}" if device is not None else ""
        return f"{NAMESPACE}/{self.group}/{kind}/{self.edge}{tail}"

    def _ms(self) -> int:
        return int(self.clock() * 1000)

    def _next_seq(self) -> int:
        seq, self._seq = self._seq, (self._seq + 1) % 256
        return seq

    def _death(self) -> Out:
        # NDEATH: only the bdSeq metric, no seq (§6.4.2, protocols.md §6.1 table).
        bd = MetricValue("bdSeq", DataType.INT64, self.bd_seq)
        return Out(self.spb_topic("NDEATH"), proto.encode([bd], timestamp=self._ms(), seq=None), 1)

    def login(self) -> Login:
        """A new CONNECT: the next bdSeq (it goes into the will and the next NBIRTH)."""
        if not self._loaded:  # once, at the first CONNECT: a few bytes
            self._loaded = True
            self._next_bd = self._read_next_bd()
        self.bd_seq = self._next_bd
        self._open.clear()
        self._born_at = float("inf")
        return super().login()

    def will(self, offline: bytes) -> Out | None:  # noqa: ARG002 - NDEATH has its own body
        """NDEATH with this connection's bdSeq, QoS 1, not retained."""
        return self._death()

    def subscriptions(self) -> list[tuple[str, int]]:
        """NCMD, DCMD and, with a primary host, its STATE — all before NBIRTH."""
        subs = [(self.spb_topic("NCMD"), 1), (self.spb_topic("DCMD", "+"), 1)]
        if self.primary_host is not None:
            subs.append((f"{NAMESPACE}/STATE/{self.primary_host}", 1))
        return subs

    async def start(self, session: Session, birth: bytes) -> None:
        """Birth now, or (with a primary host) once its STATE says online."""
        # The broker took this CONNECT (and its will): the next one carries bdSeq + 1.
        # Attempts that never reached a broker reuse the number (§5.2: +1 per CONNECT).
        self._next_bd = (self.bd_seq + 1) % 256
        if self._state_file is not None:
            await asyncio.to_thread(self._write_next_bd, self._state_file, self._next_bd)
        self._node["storegw/status"] = birth.decode()
        if self.primary_host is None:
            await self._births(session)

    def _read_next_bd(self) -> int:
        assert self._state_file is not None
        try:
            text = self._state_file.read_text().strip()
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("Cannot read %s (%s); bdSeq starts at 0", self._state_file, exc)
            return 0
        if not (text.isascii() and text.isdigit()) or int(text) > 255:  # bdSeq is 0-255
            log.warning(
                "Ignoring %s: %r is no bdSeq (0-255); starting at 0", self._state_file, text
            )
            return 0
        return int(text)

    @staticmethod
    def _write_next_bd(path: Path, value: int) -> None:
        """Atomically (write, rename): a torn file must never hold a wrong number."""
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(f"{value}\n")
            tmp.replace(path)
        except OSError as exc:
            log.warning("Cannot keep the next bdSeq in %s: %s", path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()

    async def _births(self, session: Session) -> None:
        self._seq = 0
        now = self._ms()
        metrics = [
            MetricValue("bdSeq", DataType.INT64, self.bd_seq, now),
            MetricValue(REBIRTH, DataType.BOOLEAN, value=False, timestamp=now),
        ]
        metrics += [MetricValue(n, DataType.STRING, v, now) for n, v in self._node.items()]
        await session.publish(self._birth_out("NBIRTH", None, metrics))
        for device in self._devices:
            await session.publish(self._device_birth(device))
        # Historical = stored before this session's first birth; a rebirth on request
        # (NCMD) does not make data that waited for nothing historical.
        self._born_at = min(self._born_at, self.clock())
        self._open.set()

    def _birth_out(self, kind: str, device: str | None, metrics: list[MetricValue]) -> Out:
        payload = proto.encode(metrics, timestamp=self._ms(), seq=self._next_seq())
        return Out(self.spb_topic(kind, device), payload, 0)

    def _device_birth(self, device: str) -> Out:
        now = self._ms()
        props = [MetricValue("Properties/driver", DataType.STRING, self._drivers.get(device), now)]
        known = [
            MetricValue(m.name, m.datatype, m.value, m.timestamp)
            for m in self._devices[device].values()
        ]
        return self._birth_out("DBIRTH", device, props + known)

    async def stop(self, session: Session) -> None:
        """An intentional disconnect publishes NDEATH first (§5.7: no will fires then)."""
        await session.publish(self._death())

    def outgoing(self, message: Stored) -> list[Out]:
        """DDATA for telemetry (after a DBIRTH when it brings new metrics), else NDATA."""
        historical = message.created < self._born_at
        now = self._ms()
        if message.topic == "telemetry":
            device, metrics = device_metrics(json.loads(message.payload), historical=historical)
            known = self._devices.setdefault(device, {})
            outs = []
            if any(m.name not in known for m in metrics):
                known.update({m.name: m for m in metrics})
                outs.append(self._device_birth(device))  # §6.4.18: a new metric needs a birth
            else:
                known.update({m.name: m for m in metrics})
            data = proto.encode(metrics, timestamp=now, seq=self._next_seq(), with_types=False)
            return [*outs, Out(self.spb_topic("DDATA", device), data, 0)]
        name, value = node_metric(message.topic, message.payload)
        self._node[name] = value
        metric = MetricValue(name, DataType.STRING, value, int(message.created * 1000), historical)
        data = proto.encode([metric], timestamp=now, seq=self._next_seq(), with_types=False)
        return [Out(self.spb_topic("NDATA"), data, 0)]

    async def incoming(self, session: Session, topic: str, payload: bytes) -> Inbound | None:
        """Host STATE, NCMD (rebirth, storegw commands); DCMD writes are not supported."""
        if topic == f"{NAMESPACE}/STATE/{self.primary_host}":
            await self._host_state(session, payload)
        elif topic == self.spb_topic("NCMD"):
            for name, value in proto.decode(payload):
                if name == REBIRTH and value is True:
                    log.info("Sparkplug rebirth requested by NCMD")
                    await self._births(session)
                elif name.startswith(_COMMAND) and isinstance(value, str):
                    await session.dispatch(name[len(_COMMAND) :], value.encode())
                else:
                    log.warning("Ignored NCMD metric %r: not a command this node takes", name)
        elif topic.startswith(self.spb_topic("DCMD") + "/"):
            log.warning("Ignored DCMD on %r: storegw devices take no Sparkplug writes", topic)
        return None

    async def _host_state(self, session: Session, payload: bytes) -> None:
        try:
            state = json.loads(payload)
            online, ts = bool(state["online"]), int(state["timestamp"])
        except (ValueError, KeyError, TypeError):
            log.warning(
                "Ignored a malformed STATE from host %r: %r", self.primary_host, payload[:100]
            )
            return
        if ts < self._host_ts:
            return  # an older STATE than one already seen (§5.10: compare timestamps)
        self._host_ts = ts
        if online and not self._open.is_set():
            await self._births(session)
        elif not online and self._open.is_set():
            self._open.clear()
            raise SessionEnded(f"primary host {self.primary_host!r} went offline")
