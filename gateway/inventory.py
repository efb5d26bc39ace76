"""The inventory service: one on-shelf estimate per SKU, from the best source the shelf has.

Sources, most trusted first (`EstimateSource`): RFID presence (the "presence" service's
`on_shelf(sku)`), shelf scales (devices whose config names a `sku`: weight → units with the
catalog's `unit_weight`, `gateway.shelf_binding`), else the last known quantity minus the
sales since (`gateway.inventory_book`). Every estimate carries its source, the time of the
observation it rests on, and a confidence. `estimates()` serves the inference service;
`P/inventory` gets the changed SKUs once per aggregation window and every SKU once an hour
(a full snapshot, split into parts of `PART_ITEMS`). The ledger survives restarts in the
"inventory" state.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

from gateway.estimates import EstimateSource, ShelfEstimate
from gateway.events import Sale, WeightSample
from gateway.inventory_book import Ledger
from gateway.payloads import UlidFactory, rfc3339
from gateway.services import Service
from gateway.shelf_binding import ShelfScaleCounter, ShelfScaleFields
from gateway.sinks import TELEMETRY

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.catalog import Catalog
    from gateway.config import Config
    from gateway.services import ServiceContext

log = logging.getLogger(__name__)

SNAPSHOT_EVERY = 3600.0
"""Seconds between two full snapshots on `P/inventory` (changes only in between)."""
SCALE_STALE = 300.0
"""A scale with no usable sample for this long no longer speaks for its shelf."""
PART_ITEMS = 500
"""Items per message of a full snapshot: about 60 KB, under the 120 KB limit (contract.md)."""


class PresenceSource(Protocol):
    """What inventory needs of the RFID presence service."""

    def on_shelf(self, sku: str) -> tuple[int, float] | None:
        """(tags of `sku` on its shelf, wall time the count last changed), None if not covered."""


class InventoryService(Service):
    """Per-SKU on-shelf estimates: `estimates()`, `P/inventory`, kept across restarts."""

    name = "inventory"

    def __init__(self, ctx: ServiceContext, *, wall: Callable[[], float] = time.time) -> None:
        """Bind the scales and subscribe to weights and sales (no IO)."""
        super().__init__(ctx)
        self._wall = wall
        self.ledger = Ledger()
        self._scales: dict[str, ShelfScaleCounter] = {}
        self._published: dict[str, tuple[float, str]] = {}
        self._last_full: float | None = None
        self._ids = UlidFactory()
        self.counts: Counter[str] = Counter()
        self._bind_scales(ctx.config)
        ctx.pipeline.subscribe(WeightSample, self._on_weight)
        ctx.pipeline.subscribe(Sale, self._on_sale)

    # -- life cycle -------------------------------------------------------------------

    async def open(self) -> None:
        """Restore the ledger and what was last published; assume unknown shelves full."""
        state = self.ctx.states.get(self.name)
        bad = self.ledger.load(state.get("books", {}))
        if bad:
            log.warning("Inventory state: %d unreadable SKU rows dropped", bad)
        self._published = {
            sku: (float(row[0]), str(row[1])) for sku, row in state.get("published", {}).items()
        }
        self._last_full = state.get("last_full")
        now = self._wall()
        for item in self.ctx.catalog().items.values():
            if item.shelf_capacity is not None:
                self.ledger.assume_full(item.sku, item.shelf_capacity, now)

    async def run(self) -> None:
        """Publish at the end of every aggregation window (aligned to the wall clock)."""
        while True:
            window = self.ctx.config.aggregation.window
            now = self._wall()
            end = (math.floor(now / window) + 1) * window
            await asyncio.sleep(end - now)
            await self.publish(end)

    async def reconfigure(self, config: Config) -> None:
        """Rebind scales to SKUs; the ledger stays."""
        self._bind_scales(config)

    async def close(self) -> None:
        """Leave the ledger in the state store (the daemon saves it after this)."""
        self._save()

    def stats(self) -> dict[str, Any]:
        """SKUs, bound scales and counters for status."""
        return {"skus": len(self.ctx.catalog().items), "scales": len(self._scales), **self.counts}

    # -- the estimates ----------------------------------------------------------------

    def estimates(self) -> dict[str, ShelfEstimate]:
        """The current estimate of every catalog SKU that has one."""
        now = self._wall()
        out: dict[str, ShelfEstimate] = {}
        for item in self.ctx.catalog().items.values():
            estimate = self._estimate(item.sku, item.shelf_capacity, now)
            if estimate is not None:
                out[item.sku] = estimate
        return out

    def _estimate(self, sku: str, capacity: int | None, now: float) -> ShelfEstimate | None:
        sensed = self._rfid(sku, capacity) or self._scale(sku, capacity, now)
        if sensed is None:
            return self.ledger.estimate(sku, now, capacity)
        # What a sensor sees now is the new base for "last known minus sales since".
        self.ledger.observe(sku, sensed.qty, now, sensed.source, sensed.confidence, capacity)
        book = self.ledger.books[sku]
        return ShelfEstimate(
            sku,
            sensed.qty,
            sensed.source,
            sensed.updated,
            sensed.confidence,
            book.last_refill,
            capacity,
        )

    def _rfid(self, sku: str, capacity: int | None) -> ShelfEstimate | None:
        presence: Any = self.ctx.services.get("presence")
        if presence is None or not hasattr(presence, "on_shelf"):
            return None
        found = presence.on_shelf(sku)
        if found is None:
            return None
        count, changed = found
        return ShelfEstimate(sku, float(count), EstimateSource.RFID, changed, capacity=capacity)

    def _scale(self, sku: str, capacity: int | None, now: float) -> ShelfEstimate | None:
        counts = [
            c.last
            for c in self._scales.values()
            if c.sku == sku
            and c.last is not None
            and c.last_seen is not None
            and now - c.last_seen <= SCALE_STALE
        ]
        if not counts:
            return None
        # A SKU on several scales: the shelf holds the sum; trust it as much as the worst scale.
        return ShelfEstimate(
            sku,
            float(sum(c.count for c in counts if c is not None)),
            EstimateSource.SCALE,
            min(c.ts for c in counts if c is not None),
            min(c.confidence for c in counts if c is not None),
            capacity=capacity,
        )

    # -- events (hot path: cheap) -----------------------------------------------------

    def _on_weight(self, sample: WeightSample) -> None:
        counter = self._scales.get(sample.device)
        if counter is not None:
            counter.update(sample)

    def _on_sale(self, sale: Sale) -> None:
        catalog = self.ctx.catalog()
        sku = sale.sku if sale.sku in catalog.items else None
        if sku is None:
            item = catalog.resolve(sale.sku or sale.text or "")
            if item is None:
                self.counts["unresolved_sales"] += 1
                return
            sku = item.sku
        self.ledger.sell(sku, float(sale.qty), sale.ts)

    # -- publishing -------------------------------------------------------------------

    async def publish(self, now: float) -> int:
        """Send the window's changes (or a full snapshot when due); returns items sent."""
        estimates = self.estimates()
        full = self._last_full is None or now - self._last_full >= SNAPSHOT_EVERY
        items = [
            e
            for sku, e in sorted(estimates.items())
            if full or self._published.get(sku) != (e.qty, e.source.value)
        ]
        catalog = self.ctx.catalog()
        rows = [_item(e, catalog) for e in items]
        window = self.ctx.config.aggregation.window
        head: dict[str, Any] = {"window": {"start": rfc3339(now - window), "end": rfc3339(now)}}
        if full:
            head["full"] = True
            self._last_full = now
            self.counts["snapshots"] += 1
        parts = [rows[i : i + PART_ITEMS] for i in range(0, len(rows), PART_ITEMS)]
        if full and not parts:
            parts = [[]]  # an empty store still says so once an hour
        of = self._ids.new(now)
        for n, part in enumerate(parts, 1):
            body = {**head, "items": part}
            if len(parts) > 1:
                body["part"] = {"of": of, "n": n, "total": len(parts)}
            await self.ctx.sink.send("inventory", body, TELEMETRY, now)
        for e in items:
            self._published[e.sku] = (e.qty, e.source.value)
        self.counts["published_items"] += len(items)
        self._save()
        return len(items)

    def _save(self) -> None:
        state = self.ctx.states.get(self.name)
        state["books"] = self.ledger.dump()
        state["published"] = {sku: list(v) for sku, v in self._published.items()}
        state["last_full"] = self._last_full

    # -- config -----------------------------------------------------------------------

    def _bind_scales(self, config: Config) -> None:
        catalog = self.ctx.catalog()
        scales: dict[str, ShelfScaleCounter] = {}
        for device in config.devices:
            if not isinstance(device, ShelfScaleFields) or device.sku is None:
                continue
            item = catalog.items.get(device.sku)
            if item is None or item.unit_weight is None:
                why = "is not in the catalog" if item is None else "has no unit_weight"
                log.warning(
                    "Scale %s: SKU %r %s; its weight is not counted", device.id, device.sku, why
                )
                continue
            old = self._scales.get(device.id)
            if old is not None and (old.sku, old.unit_weight, old.tare) == (
                item.sku,
                item.unit_weight,
                device.tare,
            ):
                scales[device.id] = old  # unchanged binding: keep its accepted count
            else:
                scales[device.id] = ShelfScaleCounter(device.id, item.sku, item.unit_weight, device)
        self._scales = scales


def _item(e: ShelfEstimate, catalog: Catalog) -> dict[str, Any]:
    """One SKU's row on `P/inventory` (docs/asyncapi.yaml `Inventory`)."""
    row: dict[str, Any] = {
        "sku": e.sku,
        "on_shelf": int(e.qty) if float(e.qty).is_integer() else round(e.qty, 3),
        "source": e.source.value,
        "confidence": round(e.confidence, 3),
        "as_of": rfc3339(e.updated),
    }
    item = catalog.items.get(e.sku)
    if item is not None and item.zone:
        row["zone"] = item.zone
    if e.capacity is not None:
        row["capacity"] = e.capacity
    if e.last_refill is not None:
        row["last_refill"] = rfc3339(e.last_refill)
    return row


def build(ctx: ServiceContext) -> Service | None:
    """The inventory service, when the catalog lists SKUs."""
    return InventoryService(ctx) if ctx.config.catalog.skus else None
