"""Pricer Plaza driver: a price is an item update on the ESL server; labels are polled.

The second integration style of protocols.md §5.2: the gateway never talks to a label. It
updates the item (SKU) on the store's Pricer server and gets a `requestId` — *accepted*;
the server's own radio then updates every label linked to the item. Confirmation is polled:
a label whose `lastOkUpdate` is at or after our upload shows the new data (*displayed*);
an items-result that failed fails the labels waiting on it. Auth: API key → bearer token
(refreshed on 401). Labels of one SKU share one item update while it is awaited (same content,
one request): the first upload pushes it, the others reuse its request id.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

from drivers.pricer.config import PricerConfig
from drivers.pricer.protocol import ITEMS, LABELS, RESULT, item_body, last_ok_update, request_failed
from gateway import Driver, DriverContext
from gateway.actuator import (
    LabelJob,
    LabelState,
    LabelStatus,
    LabelWriteError,
    LabelWriter,
    WriteResult,
)

if TYPE_CHECKING:
    import aiohttp


class Pricer(Driver, LabelWriter):
    """Pricer Plaza ESL server (REST, asynchronous item updates, polled label status)."""

    name = "pricer"
    summary = "Pricer Plaza electronic shelf labels through the store server's REST API"
    Config = PricerConfig

    def __init__(self, config: PricerConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self.device_id = config.id
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._pushed: dict[str, tuple[str, str]] = {}  # sku → (content digest, request id)
        self._waiting: dict[str, tuple[float, str]] = {}  # label → (upload time, request id)

    async def run(self, ctx: DriverContext) -> None:
        """Poll the labels awaiting confirmation until cancelled."""
        import aiohttp  # noqa: PLC0415 - imported when used: ~20 MB RSS

        timeout = aiohttp.ClientTimeout(total=self.cfg.request_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            try:
                while True:
                    try:
                        await self._poll(session)
                        ctx.health.ok()
                    except (aiohttp.ClientError, OSError, TimeoutError, LabelWriteError) as exc:
                        ctx.health.degraded(f"Pricer server unreachable: {exc}")
                    await asyncio.sleep(self.cfg.poll)
            finally:
                self._session = None

    def _url(self, path: str) -> str:
        return self.cfg.url.rstrip("/") + "/" + path

    async def _authorised(self, session: aiohttp.ClientSession) -> dict[str, str]:
        if self._token is None:
            headers = {
                "Access-Key": self.cfg.access_key.get(),
                "X-Pricer-Client-Id": self.cfg.client_id,
                "X-Pricer-Transaction-Id": str(uuid.uuid4()),
            }
            async with session.get(self.cfg.token_url, headers=headers) as resp:
                if resp.status != 200:
                    raise LabelWriteError(f"token refused ({resp.status})", retry=True)
                body: Any = await resp.json(content_type=None)
            token = (
                body.get("access_token") or body.get("token") if isinstance(body, dict) else None
            )
            if not isinstance(token, str):
                raise LabelWriteError("the token answer carries no token", retry=True)
            self._token = token
        return {"Authorization": f"Bearer {self._token}"}

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        session = self._session
        if session is None:
            raise LabelWriteError("the Pricer connection is not running", retry=True)
        for _ in range(2):
            headers = await self._authorised(session)
            async with session.request(method, self._url(path), headers=headers, **kw) as resp:
                if resp.status == 401:
                    self._token = None  # expired: one new token, one more try
                    continue
                if resp.status == 429 or resp.status >= 500:
                    raise LabelWriteError(f"Pricer answered {resp.status}", retry=True)
                if resp.status >= 400:
                    raise LabelWriteError(f"Pricer refused: {resp.status}", retry=False)
                return await resp.json(content_type=None)
        raise LabelWriteError("Pricer refused the new token (401)", retry=True)

    async def write(self, job: LabelJob) -> WriteResult:
        """Update the label's item; accepted when the server returned a request id."""
        import aiohttp  # noqa: PLC0415 - imported when used: ~20 MB RSS

        digest = job.content.digest()
        pushed = self._pushed.get(job.content.sku)
        waiting = {r for _, r in self._waiting.values()}
        # Share a request only while it is still awaited: once settled (or failed), the same
        # content — e.g. a revert to the regular price — must reach the server again.
        if pushed is not None and pushed[0] == digest and pushed[1] in waiting:
            request_id = pushed[1]
        else:
            try:
                body = await self._call("PATCH", ITEMS, json=[item_body(job.content)])
            except (aiohttp.ClientError, OSError) as exc:
                raise LabelWriteError(f"Pricer server unreachable: {exc}", retry=True) from None
            request_id = str(body.get("requestId")) if isinstance(body, dict) else ""
            if not request_id or request_id == "None":
                raise LabelWriteError("Pricer accepted no request id", retry=True)
            self._pushed[job.content.sku] = (digest, request_id)
        now = time.time()
        self._waiting[job.label] = (now, request_id)
        return WriteResult(accepted_at=now, reference=request_id)

    async def _poll(self, session: aiohttp.ClientSession) -> None:
        del session  # calls go through _call (token handling)
        failed: dict[str, str] = {}
        for request_id in {r for _, r in self._waiting.values()}:
            reason = request_failed(await self._call("GET", RESULT.format(request_id=request_id)))
            if reason is not None:
                failed[request_id] = reason
        for label, (since, request_id) in list(self._waiting.items()):
            if request_id in failed:
                del self._waiting[label]
                status = LabelStatus(
                    self.device_id, label, LabelState.FAILED, time.time(), failed[request_id]
                )
                self.report(status)
                continue
            records = await self._call(
                "GET", LABELS, params={"filter[barcode]": label, "projection": "M"}
            )
            for record in records if isinstance(records, list) else []:
                ok = last_ok_update(record)
                if ok is not None and ok >= since:
                    del self._waiting[label]
                    self.report(LabelStatus(self.device_id, label, LabelState.DISPLAYED, ok))
                    break
