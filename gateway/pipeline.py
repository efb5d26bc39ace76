"""The pipeline: drivers' events → the store's world → aggregates and business events.

One bounded queue sits between all drivers and this consumer (back-pressure: a driver's
`emit` waits while it is full; nothing is dropped). Readings, weights and tag reads are
folded into per-device windows; sales pass through one by one and are never aggregated
away. A timer closes windows on the wall clock for devices that fall silent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from gateway.events import Event, Reading, Readings, Sale, TagRead, WeightSample
from gateway.sinks import BUSINESS, TELEMETRY

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.aggregate import Aggregator, DeviceInfo
    from gateway.catalog import Catalog
    from gateway.sinks import Sink

log = logging.getLogger(__name__)

# Windows close this long after their end, so a poll that started just before the
# boundary and answers just after it still lands in its own window.
GRACE = 1.0


class Pipeline:
    """Consumes the event queue; owns the aggregator; writes to a sink."""

    def __init__(
        self,
        queue: asyncio.Queue[Event],
        sink: Sink,
        catalog: Catalog,
        aggregator: Aggregator,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.sink = sink
        self.catalog = catalog
        self.aggregator = aggregator
        self._wall = wall
        self.counts: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._timer_idle = False  # the window timer sleeps because no window is open
        self._sales: list[Sale] = []
        # Dispatch on the exact event class: one dict lookup per event on the hot path.
        self._handlers: dict[type, Callable[[Any], None]] = {
            Reading: aggregator.add,
            Readings: self._readings,
            Sale: self._sales.append,
            WeightSample: self._weight,
            TagRead: self._tag,
        }
        self._observers: dict[type, list[Callable[[Any], None]]] = {}

    def subscribe(self, kind: type, callback: Callable[[Any], None]) -> None:
        """Call `callback(event)` for every event of class `kind` (after the pipeline's own
        handling). Callbacks run on the hot path: keep them cheap, never block."""
        self._observers.setdefault(kind, []).append(callback)

    def configure(self, catalog: Catalog, window: float, devices: dict[str, DeviceInfo]) -> None:
        """Apply a reloaded config in place."""
        self.catalog = catalog
        self.aggregator.configure(window, devices)
        self._wake.set()

    async def run(self) -> None:
        """Consume events forever, in batches (whatever is queued when we wake up)."""
        queue = self.queue
        handle = self._handle
        while True:
            handle(await queue.get())
            n = 1
            while not queue.empty() and n < 4096:
                handle(queue.get_nowait())
                n += 1
            self.counts["events"] += n
            if self._timer_idle:
                self._timer_idle = False
                self._wake.set()  # a window may have opened: the timer must know its end
            await self._send_closed()
            await self._send_sales()

    def _handle(self, event: Event) -> None:
        kind = type(event)
        handler = self._handlers.get(kind)
        if handler is None:
            self.counts["unknown_event"] += 1
            return
        handler(event)
        observers = self._observers.get(kind)
        if observers is not None:
            for observe in observers:
                observe(event)

    def _readings(self, batch: Readings) -> None:
        add = self.aggregator.add
        for reading in batch.readings:
            add(reading)
        observers = self._observers.get(Reading)
        if observers is not None:  # as if each had been emitted on its own
            for reading in batch.readings:
                for observe in observers:
                    observe(reading)

    def _weight(self, w: WeightSample) -> None:
        self.counts["weights"] += 1
        if w.fault is not None:
            self.counts["weight_faults"] += 1
            return
        self.aggregator.add(
            Reading(
                w.device, "weight" if w.stable else "weight_moving", w.weight_kg, "kg", w.ts, w.mono
            )
        )

    def _tag(self, _: TagRead) -> None:
        # Reads become presence per tag and zone in the "presence" service (a subscriber);
        # raw reads never go up, so the pipeline only counts them.
        self.counts["tag_reads"] += 1

    async def _send_sales(self) -> None:
        if not self._sales:
            return
        sales = self._sales[:]
        self._sales.clear()
        for sale in sales:
            await self.sink.send("events/sales", self._sale_body(sale), BUSINESS, sale.ts)
            self.counts["sales"] += 1

    def _sale_body(self, sale: Sale) -> dict[str, Any]:
        sku = sale.sku
        if sku is None and sale.text:
            item = self.catalog.resolve(sale.text)
            if item is not None:
                sku = item.sku
            else:
                self.counts["unresolved_sales"] += 1
        elif sku is not None and sku not in self.catalog.items:
            self.counts["unknown_sku_sales"] += 1
        body: dict[str, Any] = {
            "device": sale.device,
            "txn": sale.txn,
            "sku": sku,
            "qty": str(sale.qty),
            "price": str(sale.price),
            "amount": str(sale.amount),
            "currency": sale.currency,
        }
        if sale.text is not None:
            body["text"] = sale.text
        if sale.total_mismatch:
            body["total_mismatch"] = True
        return body

    async def _send_closed(self) -> None:
        for closed in self.aggregator.take_closed():
            await self.sink.send("telemetry", closed.body, TELEMETRY, closed.ts)
            self.counts["windows"] += 1

    async def run_timer(self) -> None:
        """Close windows on the wall clock (devices that stopped reporting still get theirs)."""
        while True:
            end = self.aggregator.next_end()
            self._wake.clear()
            # No open window: sleep until events arrive (the consumer wakes us), so an idle
            # gateway does not tick every second.
            self._timer_idle = end is None
            delay = None if end is None else min(max(0.05, end + GRACE - self._wall()), 60.0)
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self.aggregator.flush_due(self._wall() - GRACE)
            await self._send_closed()

    async def flush(self) -> None:
        """Shutdown: take what is queued, close every window, hand it all to the sink."""
        while not self.queue.empty():
            self._handle(self.queue.get_nowait())
        await self._send_sales()
        self.aggregator.flush_all()
        await self._send_closed()
        await self.sink.drain()

    def stats(self) -> dict[str, Any]:
        """Counters and the queue's fill."""
        return {
            "queue_depth": self.queue.qsize(),
            "queue_size": self.queue.maxsize,
            "late_readings": self.aggregator.late,
            **self.counts,
        }
