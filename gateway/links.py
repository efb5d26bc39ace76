"""Links: the serial ports and TCP endpoints devices share, one scheduler each.

A link is one physical channel — an RS-485 bus behind a USB adapter, or a TCP endpoint
such as a serial server or a Modbus TCP gateway (contract.md "Config"). Every device on
it goes through `Link.exchange`: one transaction at a time (half-duplex RS-485 allows no
other), writes before polls, a pause between transactions, and a reply timeout per
transaction, so a dead meter costs the others at most its own timeout.

The daemon owns the port: it is opened on the first transaction, reopened after it is
lost (a USB adapter unplugged: the path disappears, then comes back — usually as a
`/dev/serial/by-id/...` symlink pointing at a new tty) with a growing delay, and closed
only at shutdown. Restarting a device never closes its link.

Framing is the driver's business: it hands `exchange` the request bytes and a
`Receiver` that says when the bytes received so far make a complete reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import re
import time
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import serial
from serial_asyncio_fast import connection_for_serial

from gateway.backoff import Backoff
from gateway.config.links import LinkConfig, LinksConfig, parse_tcp_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

log = logging.getLogger(__name__)

T_co = TypeVar("T_co", covariant=True)
REOPEN_FIRST = 1.0  # first wait before reopening a lost port; doubles up to `reopen_max`


class Priority(IntEnum):
    """Who goes first when several devices wait for the link (lower first)."""

    WRITE = 0  # an operator's write must not wait behind a bus full of polls
    POLL = 1


class LinkDownError(OSError):
    """The port cannot be opened, or was lost; it is retried after a growing delay."""


class ReplyTimeoutError(TimeoutError):
    """No complete reply within the timeout; `received` bytes came (0: silence)."""

    def __init__(self, message: str, received: int) -> None:
        super().__init__(message)
        self.received = received


class Receiver(Protocol[T_co]):
    """Collects a reply: `feed` returns it once complete, else None; raises ValueError
    for bytes that can never become a valid reply (a CRC error)."""

    def feed(self, data: bytes) -> T_co | None:
        """Take newly received bytes."""
        ...


class _Stream(asyncio.Protocol):
    """Bytes from the port, buffered until a transaction takes them."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.arrived = asyncio.Event()
        self.lost: Exception | None = None
        self.closed = False

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc
        self.arrived.set()

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        self.arrived.clear()
        return data


class Link:
    """One port or endpoint and its scheduler; drivers call `exchange`."""

    def __init__(self, config: LinkConfig) -> None:
        self.config = config
        self._transport: asyncio.BaseTransport | None = None
        self._stream: _Stream | None = None
        self._busy = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._last_end = 0.0
        self._backoff = Backoff(REOPEN_FIRST, max(REOPEN_FIRST, config.reopen_max))
        self._retry_at = 0.0
        self._down_since: float | None = None
        self.counters: dict[str, int] = dict.fromkeys(
            ("transactions", "timeouts", "opens", "open_failures", "lost", "stale_bytes"), 0
        )
        self.busy_seconds = 0.0

    @property
    def id(self) -> str:
        """The link id from the config."""
        return self.config.id

    @property
    def is_open(self) -> bool:
        """Whether the port is open right now."""
        return self._stream is not None and not self._stream.closed

    # -- scheduling ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _turn(self, priority: Priority) -> AsyncIterator[None]:
        """Hold the link for one transaction; waiters are served by priority, then FIFO."""
        if self._busy or self._waiters:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (priority, next(self._order), granted))
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():
                    self._hand_over()  # granted just as we were cancelled: pass it on
                raise
        else:
            self._busy = True
        try:
            yield
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        while self._waiters:
            _, _, granted = heapq.heappop(self._waiters)
            if not granted.done():  # a cancelled waiter is skipped
                granted.set_result(None)
                return
        self._busy = False

    # -- transactions -------------------------------------------------------------------

    async def exchange(
        self,
        request: bytes,
        receiver: Receiver[T_co],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the reply timeout of one transaction
        priority: Priority = Priority.POLL,
        pause: float = 0.0,
    ) -> T_co:
        """Send `request` when the link is free and return the reply `receiver` builds.

        Raises ReplyTimeoutError (nothing, or too little, came back within `timeout`,
        default the link's), LinkDownError (the port is not usable now), or the
        receiver's ValueError (a corrupted reply). `pause` lengthens the silence before
        this request for a slow device.
        """
        wait = self.config.timeout if timeout is None else timeout
        async with self._turn(priority):
            stream = await self._ensure_open()
            gap = self._last_end + max(self.config.gap, pause) - time.monotonic()
            if gap > 0:
                await asyncio.sleep(gap)
            # Bytes that arrived between transactions are a late reply to a request that
            # already timed out: never let them answer this one.
            self.counters["stale_bytes"] += len(stream.take())
            started = time.monotonic()
            received = 0
            self.counters["transactions"] += 1
            try:
                assert isinstance(self._transport, asyncio.WriteTransport)
                self._transport.write(request)
                async with asyncio.timeout(wait):
                    while True:
                        if stream.buffer:
                            data = stream.take()
                            received += len(data)
                            reply = receiver.feed(data)
                            if reply is not None:
                                return reply
                        if stream.closed:
                            raise self._lost(stream)
                        await stream.arrived.wait()
            except TimeoutError:
                self.counters["timeouts"] += 1
                what = f"{received} bytes (short frame)" if received else "no reply"
                raise ReplyTimeoutError(f"{what} within {wait:g}s", received) from None
            finally:
                self._last_end = time.monotonic()
                self.busy_seconds += self._last_end - started

    def _lost(self, stream: _Stream) -> LinkDownError:
        self.counters["lost"] += 1
        self._down_since = time.monotonic()
        reason = f": {stream.lost}" if stream.lost else ""
        log.warning("Link %s lost (%s)%s; reopening", self.id, self.config.endpoint, reason)
        self._close_transport()
        return LinkDownError(f"link {self.id} lost{reason}")

    async def _ensure_open(self) -> _Stream:
        if self._stream is not None:
            if not self._stream.closed:
                return self._stream
            self._lost(self._stream)  # lost between two transactions
        now = time.monotonic()
        if now < self._retry_at:
            raise LinkDownError(
                f"link {self.id} ({self.config.endpoint}) is down; "
                f"next attempt in {self._retry_at - now:.1f}s"
            )
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                self._transport, self._stream = await self._open()
        except (OSError, TimeoutError) as exc:
            self.counters["open_failures"] += 1
            self._retry_at = time.monotonic() + self._backoff.next_delay()
            if self._down_since is None:
                self._down_since = now
                log.warning("Link %s cannot open %s: %s", self.id, self.config.endpoint, exc)
            raise LinkDownError(
                f"link {self.id} cannot open {self.config.endpoint}: {exc}"
            ) from exc
        self.counters["opens"] += 1
        self._backoff.reset()
        self._retry_at = 0.0
        if self._down_since is not None:
            log.info("Link %s open again after %.1fs", self.id, time.monotonic() - self._down_since)
            self._down_since = None
        return self._stream

    async def _open(self) -> tuple[asyncio.BaseTransport, _Stream]:
        loop = asyncio.get_running_loop()
        cfg = self.config
        if cfg.path is None:
            host, port = parse_tcp_url(str(cfg.url))
            return await loop.create_connection(_Stream, host, port)
        # Opening a tty may block (a USB adapter's driver): off the event loop.
        port_ = await asyncio.to_thread(
            serial.Serial,
            str(cfg.path),
            baudrate=cfg.baudrate,
            parity=cfg.parity,
            stopbits=cfg.stopbits,
            bytesize=cfg.bytesize,
            timeout=0,
            exclusive=True,  # two gateways (or minicom) on one bus garble every frame
        )
        try:
            transport, stream = await connection_for_serial(loop, _Stream, port_)
        except BaseException:
            port_.close()
            raise
        return transport, cast("_Stream", stream)

    def _close_transport(self) -> None:
        transport, self._transport, self._stream = self._transport, None, None
        if transport is not None:
            transport.close()

    def reconfigure(self, config: LinkConfig) -> None:
        """Apply new settings: the port is reopened with them on the next transaction."""
        if config != self.config:
            self.config = config
            self._close_transport()

    async def close(self) -> None:
        """Close the port (shutdown)."""
        self._close_transport()
        await asyncio.sleep(0)  # let the transport's close callbacks run

    def stats(self) -> dict[str, Any]:
        """Status row for this link."""
        return {
            "endpoint": self.config.endpoint,
            "open": self.is_open,
            "busy_s": round(self.busy_seconds, 3),
            **self.counters,
        }


class LinkManager:
    """Every link of the gateway: declared ones, and devices' own TCP endpoints."""

    def __init__(self, links: LinksConfig | Iterable[LinkConfig] = ()) -> None:
        self._links: dict[str, Link] = {}
        self.configure(links)

    def configure(self, links: LinksConfig | Iterable[LinkConfig]) -> None:
        """Apply the `links:` section (start-up and reload); changed links reopen."""
        configs = links.root if isinstance(links, LinksConfig) else list(links)
        for cfg in configs:
            if cfg.id in self._links:
                self._links[cfg.id].reconfigure(cfg)
            else:
                self._links[cfg.id] = Link(cfg)

    def link(self, name: str) -> Link:
        """The link declared as `name`, or the shared link to the endpoint `tcp://H:P`."""
        found = self._links.get(name)
        if found is not None:
            return found
        if "://" not in name:
            declared = ", ".join(sorted(self._links)) or "none"
            raise LookupError(f"no link '{name}' is declared (declared: {declared})")
        host, port = parse_tcp_url(name)
        key = f"tcp://{host}:{port}"
        found = self._links.get(key)
        if found is None:
            ident = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{host}_{port}")[:64]
            found = self._links[key] = Link(LinkConfig(id=ident, url=key))
        return found

    async def close(self) -> None:
        """Close every port."""
        for link in self._links.values():
            await link.close()

    def stats(self) -> dict[str, dict[str, Any]]:
        """Status per link id."""
        return {link.id: link.stats() for link in self._links.values()}
