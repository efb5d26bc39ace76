"""The DL/T 645-2007 driver: reads data identifiers from one meter through its shared link.

Several meters share an RS-485 bus, each addressed by its 12-digit address; every request
goes through the link's scheduler (one transaction at a time). A meter whose address is
not configured is asked for it once with the wildcard address AA…AA (protocols.md §3.2:
only valid with a single meter on the line); the answer is kept in the device state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from drivers.dlt645.config import Dlt645Config, data_id
from drivers.dlt645.identifiers import BcdError
from drivers.dlt645.parser import FrameParser
from drivers.dlt645.protocol import (
    AddressReply,
    DataReply,
    ErrorReply,
    FrameError,
    Function,
    Reply,
    parse_reply,
    read_address_request,
    read_request,
)
from gateway import Driver, DriverContext, Quality, Reading
from gateway.links import LinkDownError, ReplyTimeoutError
from gateway.polling import PollClock, poll_forever

if TYPE_CHECKING:
    from drivers.dlt645.identifiers import DataId
    from gateway.links import Link


class ChecksumError(FrameError):
    """A reply arrived whole but its checksum did not match."""


@dataclass(slots=True)
class ReplyReceiver:
    """Collects the reply of meter `address` (None: any meter) to `function`."""

    address: str | None
    function: int
    parser: FrameParser = field(default_factory=FrameParser)

    def feed(self, data: bytes) -> Reply | None:
        """Take bytes; the parsed reply once a matching frame is complete."""
        bad = self.parser.bad_checksums
        for frame in self.parser.feed(data):
            if not frame.is_reply or frame.function != self.function:
                continue  # our own request echoed by the adapter, or another master's
            if self.address is not None and frame.address != self.address:
                continue  # another meter's late answer
            return parse_reply(frame)
        if self.parser.bad_checksums > bad:
            raise ChecksumError("checksum error in the reply")
        return None


class _Abandon(Exception):  # noqa: N818 - control flow, not an error for users
    """Stop this poll: the meter or the link is not answering."""


class Dlt645(Driver):
    """DL/T 645-2007 electricity meter on RS-485."""

    name = "dlt645"
    summary = "DL/T 645-2007 electricity meters on RS-485: energy, voltage, current, power"
    Config = Dlt645Config
    default_window = 900.0  # energy is billed per 15 minutes (issue 4, "Aggregates")

    def __init__(self, config: Dlt645Config) -> None:
        super().__init__(config)
        self.cfg = config
        self.ids = [data_id(name) for name in config.metrics]
        self._refused: set[str] = set()

    async def run(self, ctx: DriverContext) -> None:
        """Find the address if needed, then poll the metrics until cancelled."""
        cfg = self.cfg
        link = ctx.link(cfg.link)
        address = cfg.address or ctx.state.get("address") or await self._discover(ctx, link)
        clock = PollClock(
            cfg.interval, cfg.offset, cfg.jitter, dead_after=cfg.dead_after, dead_max=cfg.dead_max
        )
        await poll_forever(ctx, clock, lambda: self._poll(ctx, link, address, clock.dead))

    async def _discover(self, ctx: DriverContext, link: Link) -> str:
        request = read_address_request(preamble=self.cfg.preamble)
        receiver = ReplyReceiver(None, Function.READ_ADDRESS)
        reply = await link.exchange(request, receiver, timeout=self.cfg.timeout)
        if not isinstance(reply, AddressReply):
            raise FrameError(f"read-address got {reply!r}")
        ctx.state["address"] = reply.address
        ctx.log.info("Meter answered the wildcard read-address: address %s", reply.address)
        return reply.address

    async def _poll(self, ctx: DriverContext, link: Link, address: str, dead: bool) -> str | None:
        for entry in self.ids:
            try:
                reply = await self._read(ctx, link, address, entry, 0 if dead else self.cfg.retries)
            except _Abandon as exc:
                return str(exc)
            ts, mono = ctx.clock.now()
            await ctx.emit(self._reading(ctx, entry, reply, ts, mono))
        return None

    async def _read(
        self, ctx: DriverContext, link: Link, address: str, entry: DataId, retries: int
    ) -> Reply:
        request = read_request(address, entry.di, preamble=self.cfg.preamble)
        for attempt in range(retries + 1):
            receiver = ReplyReceiver(address, Function.READ_DATA)
            try:
                return await link.exchange(
                    request, receiver, timeout=self.cfg.timeout, pause=self.cfg.pause
                )
            except ReplyTimeoutError as exc:
                ctx.health.count("short_frames" if exc.received else "timeouts")
                reason = f"meter {address} {entry.name}: {exc}"
            except ChecksumError as exc:
                ctx.health.count("checksum_errors")
                reason = f"meter {address} {entry.name}: {exc}"
            except FrameError as exc:
                ctx.health.count("bad_frames")
                reason = f"meter {address} {entry.name}: {exc}"
            except LinkDownError as exc:
                ctx.health.count("link_down")
                raise _Abandon(str(exc)) from None
            finally:
                ctx.health.count("discarded_bytes", receiver.parser.discarded)
            if attempt < retries:
                ctx.health.count("retries")
        raise _Abandon(reason)

    def _reading(
        self, ctx: DriverContext, entry: DataId, reply: Reply, ts: float, mono: float
    ) -> Reading:
        bad = Reading(ctx.device_id, entry.name, float("nan"), entry.unit, ts, mono, Quality.BAD)
        if isinstance(reply, ErrorReply):
            ctx.health.count("abnormal_replies")
            if entry.name not in self._refused:  # once per metric: the meter will not change
                self._refused.add(entry.name)
                ctx.log.warning("Meter refuses %s: %s", entry.name, "; ".join(reply.messages))
            return bad
        if not isinstance(reply, DataReply) or reply.di != entry.di:
            ctx.health.count("bad_frames")
            return bad
        try:
            value = entry.decode(reply.value)
        except BcdError:
            ctx.health.count("bad_values")
            return bad
        # A counter of 2n BCD digits rolls over to zero at 10^(2n - decimals).
        wrap = 10.0 ** (2 * entry.length - entry.decimals) if entry.counter else None
        return Reading(
            ctx.device_id, entry.name, value, entry.unit, ts, mono, counter=entry.counter, wrap=wrap
        )
