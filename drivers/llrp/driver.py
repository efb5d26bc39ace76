"""The LLRP client: connect, configure an inventory ROSpec, turn tag reports into TagReads.

One connection is one `_Session` (protocols.md §1.1, "Connection sequence"): wait for the
reader's READER_EVENT_NOTIFICATION with ConnectionAttemptEvent = Success before sending
anything; SET_READER_CONFIG (keepalive, events), DELETE_ACCESSSPEC(0), DELETE_ROSPEC(0),
ADD_ROSPEC, ENABLE_ROSPEC, START_ROSPEC; then read RO_ACCESS_REPORTs forever, answering
every KEEPALIVE with a KEEPALIVE_ACK that echoes its message ID.

Reconnection is the driver's own loop, not the supervisor's: a lost, silent or garbled
connection (OSError, no message for three keepalive intervals, a framing error) makes
the device `degraded` — logged once — and the driver reconnects after a growing delay,
then re-configures from scratch. A reader that *refuses* our configuration raises
`LLRPRejectedError`: that is not fixed by reconnecting, so the supervisor takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from typing import TYPE_CHECKING, NoReturn

from drivers.llrp.config import LlrpConfig
from drivers.llrp.protocol import (
    LLRPDecodeError,
    LLRPFramingError,
    Message,
    MessageReader,
    MessageType,
    NotificationEvent,
    ROSpecSettings,
    build_add_rospec,
    build_close_connection,
    build_delete_accessspec,
    build_delete_rospec,
    build_enable_rospec,
    build_keepalive_ack,
    build_set_reader_config,
    build_start_rospec,
    decode_message_status,
    decode_reader_event,
    decode_ro_access_report,
    response_type,
)
from gateway import Driver, DriverContext, TagRead
from gateway.backoff import Backoff

if TYPE_CHECKING:
    from collections.abc import Callable

DEAD_AFTER_KEEPALIVES = 3
"""Missed keepalive intervals before the connection counts as dead (protocols.md §1.1)."""
RECONNECT_INITIAL = 1.0
RECONNECT_MAX = 60.0
READ_SIZE = 256 * 1024
EVENTS = frozenset({NotificationEvent.ANTENNA, NotificationEvent.READER_EXCEPTION})
# Requests whose refusal is harmless: deleting what is not there, or starting a ROSpec
# that an Immediate start trigger already made active (some readers refuse that, §1.1).
TOLERATED = frozenset(
    {MessageType.DELETE_ACCESSSPEC, MessageType.DELETE_ROSPEC, MessageType.START_ROSPEC}
)


class LLRPRejectedError(RuntimeError):
    """The reader refused a configuration request: reconnecting will not help."""


class ReaderSilentError(TimeoutError):
    """No message from the reader for three keepalive intervals: the connection is dead."""


class LlrpDriver(Driver):
    """Fixed UHF RFID reader over LLRP: one TagRead per tag report."""

    name = "llrp"
    summary = "Fixed UHF RFID readers over LLRP 1.0.1 (Impinj, Zebra, ...): tag reads per antenna"
    Config = LlrpConfig

    async def run(self, ctx: DriverContext) -> None:
        """Connect, configure, read; reconnect by itself after connection trouble."""
        cfg = self.config
        assert isinstance(cfg, LlrpConfig)
        backoff = Backoff(RECONNECT_INITIAL, RECONNECT_MAX)
        while True:
            session = Session(cfg, ctx)
            try:
                await session.run()
            except (OSError, TimeoutError, LLRPFramingError) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if session.configured:
                backoff.reset()
            # Health logs the first "Degraded: ..." line and "Recovered" once back.
            ctx.health.degraded(reason)
            ctx.health.count("reconnects")
            ctx.log.debug("Reconnecting after: %s", reason)
            # Stay well inside the supervisor's hang timeout while waiting.
            await asyncio.sleep(min(backoff.next_delay(), cfg.hang_timeout / 2))


class Session:
    """One LLRP connection, from TCP connect to its loss."""

    def __init__(self, cfg: LlrpConfig, ctx: DriverContext) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.configured = False
        self._framer = MessageReader()
        self._pending: deque[Message] = deque()
        self._last_id = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._dead_after = cfg.keepalive * DEAD_AFTER_KEEPALIVES
        self._dispatch: dict[int, Callable[[Message], object]] = {
            MessageType.KEEPALIVE: self._keepalive,
            MessageType.READER_EVENT_NOTIFICATION: self._reader_event,
            MessageType.ERROR_MESSAGE: self._error_message,
        }

    async def run(self) -> NoReturn:
        """Connect, wait for the reader's go-ahead, configure, then read until lost."""
        cfg = self.cfg
        async with asyncio.timeout(cfg.connect_timeout):
            self._reader, self._writer = await asyncio.open_connection(cfg.host, cfg.port)
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            # The spec recommends TCP keepalive besides LLRP's own (informative §20).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                await self._await_connection_event()
            await self._configure()
            self.configured = True
            self.ctx.health.ok()
            self.ctx.log.info("Inventory running on %s:%d", cfg.host, cfg.port)
            await self._read_forever()
        finally:
            await self._close()

    def _new_id(self) -> int:
        self._last_id = (self._last_id + 1) & 0xFFFFFFFF
        return self._last_id

    def _send(self, frame: bytes) -> None:
        assert self._writer is not None
        self._writer.write(frame)

    async def _next(self) -> Message:
        """The next message; raises when the reader closed or said nothing for too long."""
        pending = self._pending
        while not pending:
            assert self._reader is not None
            try:
                async with asyncio.timeout(self._dead_after):
                    data = await self._reader.read(READ_SIZE)
            except TimeoutError:
                raise ReaderSilentError(
                    f"no message from the reader for {self._dead_after:g}s (keepalive missed)"
                ) from None
            if not data:
                raise ConnectionResetError("the reader closed the connection")
            pending.extend(self._framer.feed(data))
        return pending.popleft()

    async def _await_connection_event(self) -> None:
        """Spec §18.1: the client sends nothing before ConnectionAttemptEvent = Success."""
        while True:
            msg = await self._next()
            if msg.type == MessageType.READER_EVENT_NOTIFICATION:
                event = decode_reader_event(msg.body)
                if event.connection_attempt is not None:
                    if not event.connection_ok:
                        raise ConnectionRefusedError(f"reader refused: {event.connection_text}")
                    return
            await self._handle(msg)

    async def _configure(self) -> None:
        cfg = self.cfg
        settings = ROSpecSettings(antennas=tuple(cfg.antennas) or (0,))
        keepalive_ms = round(cfg.keepalive * 1000)
        reset = cfg.reset == "factory"
        await self._request(
            lambda i: build_set_reader_config(
                i,
                reset=reset,
                events=EVENTS,
                keepalive_ms=keepalive_ms,
                hold_events_on_reconnect=False,
            ),
            MessageType.SET_READER_CONFIG,
        )
        await self._request(build_delete_accessspec, MessageType.DELETE_ACCESSSPEC)
        await self._request(build_delete_rospec, MessageType.DELETE_ROSPEC)
        await self._request(lambda i: build_add_rospec(i, settings), MessageType.ADD_ROSPEC)
        rospec = settings.rospec_id
        await self._request(lambda i: build_enable_rospec(i, rospec), MessageType.ENABLE_ROSPEC)
        await self._request(lambda i: build_start_rospec(i, rospec), MessageType.START_ROSPEC)

    async def _request(self, build: Callable[[int], bytes], kind: MessageType) -> None:
        """Send one request and wait for its reply, handling whatever arrives meanwhile.

        Replies are matched by message ID and type, never by arrival order (§1.1).
        """
        msg_id = self._new_id()
        self._send(build(msg_id))
        expected = response_type(kind)
        async with asyncio.timeout(self.cfg.request_timeout):
            while True:
                msg = await self._next()
                if msg.id == msg_id and msg.type in (expected, MessageType.ERROR_MESSAGE):
                    break
                await self._handle(msg)
        status = decode_message_status(msg)
        if status.ok:
            return
        if kind in TOLERATED and msg.type == expected:
            self.ctx.log.debug("%s answered %s (harmless)", kind.name, status.text)
            return
        raise LLRPRejectedError(f"reader refused {kind.name}: {status.text}")

    async def _read_forever(self) -> NoReturn:
        handle = self._handle
        nxt = self._next
        while True:
            await handle(await nxt())

    async def _handle(self, msg: Message) -> None:
        if msg.type == MessageType.RO_ACCESS_REPORT:
            await self._report(msg)
            return
        special = self._dispatch.get(msg.type)
        if special is not None:
            special(msg)
        else:
            self.ctx.health.count("other_messages")

    async def _report(self, msg: Message) -> None:
        ctx = self.ctx
        try:
            report = decode_ro_access_report(msg.body)
        except LLRPDecodeError as exc:
            # The framing is intact: count the bad report and go on (report.py).
            ctx.health.count("decode_errors")
            ctx.log.debug("Bad RO_ACCESS_REPORT %d: %s", msg.id, exc)
            return
        ts, mono = ctx.clock.now()
        device = ctx.device_id
        emit = ctx.emit
        for tag in report.tags:
            await emit(TagRead(device, tag.antenna, tag.epc, tag.rssi, ts, mono, tag.seen_count))
        ctx.health.count("tag_reports", len(report.tags))
        if report.skipped:
            ctx.health.count("skipped_parameters", report.skipped)
        ctx.health.ok()

    def _keepalive(self, msg: Message) -> None:
        # Echo the KEEPALIVE's ID: the spec's request/response correlation (§1.1).
        self._send(build_keepalive_ack(msg.id))
        self.ctx.health.count("keepalives")
        if self.configured:
            self.ctx.health.ok()

    def _reader_event(self, msg: Message) -> None:
        try:
            event = decode_reader_event(msg.body)
        except LLRPDecodeError as exc:
            self.ctx.health.count("decode_errors")
            self.ctx.log.debug("Bad READER_EVENT_NOTIFICATION: %s", exc)
            return
        if event.connection_closed:
            raise ConnectionResetError("the reader is closing the connection")
        for kind, antenna in event.antenna_events:
            # AntennaEvent type: 0 disconnected, 1 connected (spec §16.2.7.6.7).
            state = "connected" if kind else "disconnected"
            self.ctx.log.warning("Antenna %d %s", antenna, state)
        if event.exception is not None:
            self.ctx.log.warning("Reader exception: %r", event.exception)
        self.ctx.health.count("reader_events")

    def _error_message(self, msg: Message) -> None:
        try:
            text = decode_message_status(msg).text
        except LLRPDecodeError:
            text = "undecodable"
        self.ctx.health.count("error_messages")
        self.ctx.log.warning("Reader sent ERROR_MESSAGE %d: %s", msg.id, text)

    async def _close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if self.configured and not writer.is_closing():
            # Polite goodbye without waiting for replies: stop our ROSpec, then close
            # (protocols.md §1.1 shutdown). The next connect deletes specs anyway.
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(build_delete_rospec(self._new_id(), 0))
                writer.write(build_close_connection(self._new_id()))
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
