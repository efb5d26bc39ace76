"""OpenEPaperLink driver: uploads price content to tags and learns when they show it.

IO and timing only (protocol knowledge is in `protocol.py`). `run()` keeps one HTTP
session: on connect it sets the AP clock (`/set_time`), reads every tag (`/get_db`, paged)
and follows the WebSocket `/ws`, re-reading `/get_db` every `refresh` when the socket is
quiet. A tag counts as showing its latest content when its record has `pending == 0` (at
`updatelast`, AP time, which we set) or when the AP logs `xfer complete` for it; `xfer
timeout` means the AP dropped the content, reported as failed so pricing uploads again
(protocols.md §5.1 acknowledgement rule). `write()` posts a drawing script to `/jsonupload`.

HTTP client: aiohttp (also the simulator's server and the WebSocket client).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from drivers.openepaperlink.config import OpenEPaperLinkConfig
from drivers.openepaperlink.protocol import (
    TagRecord,
    TransferDone,
    TransferTimeout,
    drawing_script,
    normalise_mac,
    parse_message,
)
from gateway import Driver, DriverContext
from gateway.actuator import (
    LabelJob,
    LabelState,
    LabelStatus,
    LabelWriteError,
    LabelWriter,
    WriteResult,
)
from gateway.backoff import Backoff

if TYPE_CHECKING:
    import aiohttp

    from drivers.openepaperlink.protocol import ApEvent

_MAX_PAGES = 1000  # /get_db pages ~5 kB each; a bound against an AP that never stops


class OpenEPaperLink(Driver, LabelWriter):
    """OpenEPaperLink access point (HTTP API + WebSocket)."""

    name = "openepaperlink"
    summary = "OpenEPaperLink e-paper shelf labels through the access point's HTTP API"
    Config = OpenEPaperLinkConfig

    def __init__(self, config: OpenEPaperLinkConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self.device_id = config.id
        self._session: aiohttp.ClientSession | None = None
        self._reported: dict[str, int] = {}  # mac → updatelast already reported
        self._labels: dict[str, str] = {}  # mac → label id as pricing wrote it
        self._layout = {str(k): v.model_dump() for k, v in config.layout.items()}

    async def run(self, ctx: DriverContext) -> None:
        """Follow the access point until cancelled; reconnect with backoff when it is away."""
        import aiohttp  # noqa: PLC0415 - imported when used: ~20 MB RSS

        timeout = aiohttp.ClientTimeout(total=self.cfg.request_timeout)
        backoff = Backoff(min(0.1, self.cfg.reconnect), self.cfg.reconnect)
        async with aiohttp.ClientSession(
            self.cfg.url.rstrip("/") + "/", timeout=timeout
        ) as session:
            self._session = session
            try:
                while True:
                    try:
                        await self._follow(ctx, session, backoff)
                    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                        ctx.health.degraded(
                            f"access point unreachable: {exc or type(exc).__name__}"
                        )
                        ctx.health.count("disconnects")
                    await asyncio.sleep(backoff.next_delay())
            finally:
                self._session = None

    async def _follow(
        self, ctx: DriverContext, session: aiohttp.ClientSession, backoff: Backoff
    ) -> None:
        import aiohttp  # noqa: PLC0415 - imported when used: ~20 MB RSS

        if self.cfg.set_time:
            async with session.post("set_time", data={"epoch": str(int(time.time()))}) as resp:
                resp.raise_for_status()
        await self._read_db(session)
        async with session.ws_connect("ws", heartbeat=30.0) as ws:
            ctx.health.ok()
            backoff.reset()
            while True:
                try:
                    msg = await ws.receive(timeout=self.cfg.refresh)
                except TimeoutError:
                    await self._read_db(session)
                    ctx.health.ok()
                    continue
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    if msg.type in (
                        aiohttp.WSMsgType.CLOSE,
                        aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.ERROR,
                    ):
                        raise ConnectionError("the access point closed its WebSocket")
                    continue
                try:
                    message = json.loads(msg.data)
                except ValueError:
                    ctx.health.count("bad_messages")
                    continue
                self._handle(parse_message(message))
                ctx.health.ok()

    async def _read_db(self, session: aiohttp.ClientSession) -> None:
        """Every tag record, following `continu` pages (protocols.md §5.1 `/get_db`)."""
        pos: int | None = 0
        for _ in range(_MAX_PAGES):
            params = {"pos": str(pos)} if pos else {}
            async with session.get("get_db", params=params) as resp:
                resp.raise_for_status()
                page: Any = await resp.json(content_type=None)
            self._handle(
                parse_message({"tags": page.get("tags", [])} if isinstance(page, dict) else {})
            )
            nxt = page.get("continu") if isinstance(page, dict) else None
            if not isinstance(nxt, int) or nxt <= 0:
                return
            pos = nxt

    def _handle(self, events: list[ApEvent]) -> None:
        now = time.time()
        for event in events:
            label = self._labels.get(event.mac, event.mac)
            if isinstance(event, TagRecord):
                if event.pending == 0 and event.updatelast > 0:
                    if self._reported.get(event.mac) == event.updatelast:
                        continue
                    self._reported[event.mac] = event.updatelast
                    self.report(
                        LabelStatus(
                            self.device_id, label, LabelState.DISPLAYED, float(event.updatelast)
                        )
                    )
            elif isinstance(event, TransferDone):
                self.report(LabelStatus(self.device_id, label, LabelState.DISPLAYED, now))
            elif isinstance(event, TransferTimeout):
                self.report(
                    LabelStatus(
                        self.device_id,
                        label,
                        LabelState.FAILED,
                        now,
                        "xfer timeout: the AP dropped the content",
                    )
                )

    async def write(self, job: LabelJob) -> WriteResult:
        """POST the label's drawing script to `/jsonupload`; return when the AP saved it."""
        import aiohttp  # noqa: PLC0415 - imported when used: ~20 MB RSS

        session = self._session
        if session is None:
            raise LabelWriteError("the access point connection is not running", retry=True)
        try:
            mac = normalise_mac(job.label)
        except ValueError as exc:
            raise LabelWriteError(str(exc), retry=False) from None
        self._labels[mac] = job.label
        script = drawing_script(job.content.texts, self._layout, self.cfg.width, self.cfg.height)
        form = {"mac": mac, "json": json.dumps(script, ensure_ascii=False)}
        try:
            async with session.post("jsonupload", data=form) as resp:
                status, text = resp.status, (await resp.text())[:200]
        except TimeoutError:
            # protocols.md §5.1: a malformed upload gets no answer at all; so may a busy AP.
            timeout = self.cfg.request_timeout
            raise LabelWriteError(f"no answer within {timeout:g}s", retry=True) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise LabelWriteError(
                f"access point unreachable: {exc or type(exc).__name__}", retry=True
            ) from None
        if status == 200:
            return WriteResult(accepted_at=time.time())
        if status == 409:
            raise LabelWriteError("the access point is busy (409 come back later)", retry=True)
        if status == 400 and "not found" in text.lower():
            raise LabelWriteError(f"the access point does not know tag {mac}", retry=False)
        raise LabelWriteError(f"the access point answered {status} {text!r}", retry=status >= 500)
