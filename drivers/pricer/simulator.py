"""A simulated Pricer Plaza store server on 127.0.0.1 (token, item updates, label status).

Serves what the driver uses, shaped as protocols.md §5.2 describes Pricer's public API:
`GET /oauth/token` (headers `Access-Key`, `X-Pricer-Client-Id`) → a bearer token; `PATCH
/api/public/core/v1/items` → `{"requestId": n}`; `GET …/items-result/{n}` → status; `GET
…/labels?filter[barcode]=…` → label records with `links` and `lastOkUpdate`. Labels linked
to an updated item get `lastOkUpdate` = now after `confirm_delay`; `fail_items` makes an
item's request fail; `expire_tokens()` makes every token answer 401 once.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from drivers.pricer.protocol import ITEMS, LABELS

ACCESS_KEY = "sim-key"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class PricerSimulator:
    """The simulated server; `links` maps label barcode → item id."""

    links: dict[str, str]
    confirm_delay: float = 0.0
    port: int = 0
    fail_items: set[str] = field(default_factory=set)
    item_updates: list[dict[str, Any]] = field(default_factory=list)
    last_ok: dict[str, str] = field(default_factory=dict)
    results: dict[int, str] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    token_requests: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _timers: set[asyncio.TimerHandle] = field(default_factory=set)

    @property
    def url(self) -> str:
        """Store base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Serve on a free 127.0.0.1 port."""
        app = web.Application()
        app.router.add_get("/oauth/token", self._token)
        app.router.add_patch("/" + ITEMS, self._items)
        app.router.add_get("/" + ITEMS + "-result/{request_id}", self._result)
        app.router.add_get("/" + LABELS, self._labels)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving."""
        for handle in self._timers:
            handle.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def expire_tokens(self) -> None:
        """Every token issued so far is refused (401) from now on."""
        self.tokens.clear()

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.removeprefix("Bearer ") in self.tokens

    async def _token(self, request: web.Request) -> web.Response:
        if request.headers.get("Access-Key") != ACCESS_KEY:
            return web.Response(status=403)
        self.token_requests += 1
        token = f"t{self.token_requests}"
        self.tokens.add(token)
        return web.json_response({"access_token": token, "token_type": "Bearer"})

    async def _items(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        items = await request.json()
        request_id = next(self._ids)
        self.item_updates.extend(items)
        ids = {i["itemId"] for i in items}
        failed = ids & self.fail_items
        self.results[request_id] = "FAILED" if failed else "PENDING"
        loop = asyncio.get_running_loop()

        def done() -> None:
            if not failed:
                self.results[request_id] = "COMPLETED"
                for barcode, item_id in self.links.items():
                    if item_id in ids:
                        self.last_ok[barcode] = _now_iso()
            self.changed.set()

        handle = loop.call_later(self.confirm_delay, done)
        self._timers.add(handle)
        self.changed.set()
        return web.json_response({"requestId": request_id})

    async def _result(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        request_id = int(request.match_info["request_id"])
        status = self.results.get(request_id)
        if status is None:
            return web.Response(status=404)
        return web.json_response({"requestId": request_id, "status": status})

    async def _labels(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        barcode = request.query.get("filter[barcode]")
        records = [
            {
                "barcode": b,
                "links": [{"barcode": b, "itemId": item}],
                "lastOkUpdate": self.last_ok.get(b),
            }
            for b, item in self.links.items()
            if barcode is None or b == barcode
        ]
        return web.json_response(records)
