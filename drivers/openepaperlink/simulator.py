"""A simulated OpenEPaperLink access point: a real HTTP + WebSocket server on 127.0.0.1.

Implements what the driver uses, as protocols.md §5.1 describes the firmware: `POST
/jsonupload` (form `mac`, `json`; `200 "Ok, saved"`, `400 "mac not found in tagDB"`, `409
"come back later"`), `GET /get_db` (paged with `continu`), `POST /set_time`, `POST
/tag_cmd`, and `/ws` (`{"tags": [...]}` on every change, `logMsg` "reports xfer complete",
`errMsg` "xfer timeout"). Each upload is "transferred" `confirm_delay` seconds later (the
tag's check-in); switches make tags fail, the AP busy, uploads hang, or the AP go offline.

    sim = ApSimulator(["0000021A0B3C4D5E"], confirm_delay=0.2)
    await sim.start()          # sim.url → http://127.0.0.1:PORT
    await sim.go_offline(); await sim.go_online()
    await sim.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from drivers.openepaperlink.protocol import normalise_mac

PAGE = 50  # records per /get_db page (the firmware pages at ~5 kB)


@dataclass(slots=True)
class SimTag:
    """One virtual tag's record (a subset of the firmware's fields)."""

    mac: str
    pending: int = 0
    updatecount: int = 0
    updatelast: int = 0
    lastseen: int = 0
    nextcheckin: int = 0
    content: str | None = None


@dataclass(slots=True)
class Upload:
    """One accepted upload, as the AP received it."""

    mac: str
    at: float
    script: list[Any]


@dataclass(slots=True)
class ApSimulator:
    """The simulated access point (see the module docstring)."""

    macs: list[str]
    confirm_delay: float = 0.0
    port: int = 0
    fail_tags: set[str] = field(default_factory=set)  # transfer ends in `xfer timeout`
    silent_tags: set[str] = field(default_factory=set)  # never check in
    busy: bool = False  # answer 409 "come back later"
    hang: bool = False  # accept the request and never answer
    tags: dict[str, SimTag] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)
    transfers: list[tuple[str, float]] = field(default_factory=list)  # (mac, when it took it)
    clock_set: list[int] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None
    _sockets: set[web.WebSocketResponse] = field(default_factory=set)
    _timers: set[asyncio.TimerHandle] = field(default_factory=set)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        for mac in self.macs:
            norm = normalise_mac(mac)
            self.tags[norm] = SimTag(norm, lastseen=int(time.time()))

    @property
    def url(self) -> str:
        """The base URL the driver is configured with."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Serve on 127.0.0.1 (a free port the first time, the same port afterwards)."""
        app = web.Application()
        app.router.add_post("/jsonupload", self._jsonupload)
        app.router.add_get("/get_db", self._get_db)
        app.router.add_post("/set_time", self._set_time)
        app.router.add_post("/tag_cmd", self._tag_cmd)
        app.router.add_get("/ws", self._ws)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close every connection and stop serving."""
        self._release.set()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._release = asyncio.Event()

    async def go_offline(self) -> None:
        """The AP drops off the network: connections refused until `go_online()`."""
        await self.stop()

    async def go_online(self) -> None:
        """Back on the same port."""
        await self.start()

    # -- the handlers --------------------------------------------------------------------

    async def _jsonupload(self, request: web.Request) -> web.Response:
        form = await request.post()
        mac, script = form.get("mac"), form.get("json")
        if self.hang:
            await self._release.wait()
            return web.Response(status=500, text="shut down")
        if self.busy:
            return web.Response(status=409, text="come back later")
        if not isinstance(mac, str) or not isinstance(script, str):
            return web.Response(status=400, text="Missing parameters")
        tag = self.tags.get(mac)
        if tag is None:
            return web.Response(status=400, text="mac not found in tagDB")
        self.uploads.append(Upload(mac, time.time(), json.loads(script)))
        tag.pending, tag.content = 1, script
        await self._broadcast({"tags": [self._record(tag)]})
        if mac not in self.silent_tags:
            self._after(self.confirm_delay, self._transfer, tag)
        self.changed.set()
        return web.Response(text="Ok, saved")

    def _after(self, delay: float, callback: Any, *args: Any) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            task = loop.create_task(callback(*args), name="oepl-sim:transfer")
            task.add_done_callback(lambda _t: self.changed.set())

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    async def _transfer(self, tag: SimTag) -> None:
        """The tag's check-in: it takes its content (or the transfer times out)."""
        now = int(time.time())
        tag.lastseen = now
        if tag.mac in self.fail_tags:
            # protocols.md §5.1: the firmware deletes everything queued for that tag.
            tag.pending, tag.content = 0, None
            await self._broadcast({"errMsg": f"< {tag.mac} xfer timeout"})
            await self._broadcast({"tags": [self._record(tag)]})
            return
        self.transfers.append((tag.mac, time.time()))
        tag.pending = 0
        tag.updatecount += 1
        tag.updatelast = now
        await self._broadcast({"tags": [self._record(tag)]})
        await self._broadcast({"logMsg": f"{tag.mac} reports xfer complete\r\n"})

    async def _get_db(self, request: web.Request) -> web.Response:
        records = [self._record(t) for t in self.tags.values()]
        mac = request.query.get("mac")
        if mac is not None:
            records = [r for r in records if r["mac"] == mac]
        pos = int(request.query.get("pos", "0"))
        body: dict[str, Any] = {"tags": records[pos : pos + PAGE]}
        if pos + PAGE < len(records):
            body["continu"] = pos + PAGE
        return web.json_response(body)

    async def _set_time(self, request: web.Request) -> web.Response:
        form = await request.post()
        epoch = int(str(form.get("epoch", "0")))
        if epoch <= 1_600_000_000:
            return web.Response(status=400, text="bad epoch")
        self.clock_set.append(epoch)
        return web.Response(text="ok")

    async def _tag_cmd(self, request: web.Request) -> web.Response:
        form = await request.post()
        tag = self.tags.get(str(form.get("mac", "")))
        if tag is None:
            return web.Response(status=400, text="Error: mac not found")
        if form.get("cmd") == "clear":
            tag.pending, tag.content = 0, None
        return web.Response(text="Ok, done")

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(ws)
        return ws

    async def _broadcast(self, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        for ws in list(self._sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(text)

    @staticmethod
    def _record(tag: SimTag) -> dict[str, Any]:
        record = asdict(tag)
        del record["content"]
        record["hwType"] = 1
        return record
