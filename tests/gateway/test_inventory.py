"""The inventory service: RFID over scales over sales, ages and confidence, `P/inventory`
changes and snapshots against docs/asyncapi.yaml, and the ledger across a restart."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import pytest

from gateway import inventory
from gateway.catalog import Catalog
from gateway.config import parse_config
from gateway.estimates import EstimateSource
from gateway.events import Sale, WeightSample
from gateway.inventory import InventoryService, build
from gateway.plugins import discover
from gateway.services import ServiceContext
from gateway.state import StateStore
from tests.contract_schema import validate

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

T0 = 1_800_000_000.0
CONFIG = """\
gateway: {{store: s1, id: g1, state_dir: {state}}}
aggregation: {{window: 1s}}
catalog:
  skus:
    - {{sku: "A1", name: Bananas, unit_weight: 0.2, shelf_capacity: 40, zone: fruit}}
    - {{sku: "B2", name: Milk 1L, shelf_capacity: 24}}
    - {{sku: "C3", name: Cola, plu: "77"}}
    - {{sku: "D4", name: Apples, unit_weight: 0.25}}
devices:
  - {{id: scale-a, driver: mt_sics, port: /dev/null, sku: "A1", tare: 0.5}}
  - {{id: scale-x, driver: toledo, port: /dev/null, sku: "B2"}}
  - {{id: scale-d, driver: toledo, port: /dev/null}}
"""


class Pipe:
    """Stands in for the pipeline: collects subscriptions, hands events to them."""

    def __init__(self) -> None:
        self.subs: dict[type, list[Callable[[Any], None]]] = {}

    def subscribe(self, kind: type, callback: Callable[[Any], None]) -> None:
        self.subs.setdefault(kind, []).append(callback)

    def feed(self, event: Any) -> None:
        for callback in self.subs.get(type(event), []):
            callback(event)


class Sink:
    """Records what the service publishes; `sent` is set on each message."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any], str]] = []
        self.sent = asyncio.Event()

    async def send(
        self, topic: str, body: dict[str, Any], cls: str, ts: float | None = None
    ) -> None:
        self.messages.append((topic, body, cls))
        self.sent.set()

    async def drain(self) -> None:
        return None


class Presence:
    """Stands in for the RFID presence service."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, float]] = {}

    def on_shelf(self, sku: str) -> tuple[int, float] | None:
        return self.counts.get(sku)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Rig:
    """One inventory service on a stand-in daemon, restartable on the same state file."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        text = CONFIG.format(state=tmp_path / "state")
        self.config = parse_config(text, "t.yaml", discover(), base_dir=tmp_path)
        self.catalog = Catalog.from_config(self.config.catalog)
        self.clock = Clock()
        self.presence = Presence()

    async def start(self, *, presence: bool = False) -> InventoryService:
        self.pipe, self.sink = Pipe(), Sink()
        self.states = StateStore(self.tmp_path / "state.sqlite")
        self.states.open()
        services: dict[str, Any] = {"presence": self.presence} if presence else {}
        ctx = ServiceContext(
            config=self.config,
            sink=self.sink,
            router=None,
            pipeline=self.pipe,  # type: ignore[arg-type]
            states=self.states,
            supervisor=cast("Any", None),
            catalog=lambda: self.catalog,
            status=dict,
            stamper=cast("Any", None),
            ready=asyncio.Event(),
            core_alive=lambda: True,
            services=services,
        )
        service = build(ctx)
        assert isinstance(service, InventoryService)
        service._wall = self.clock
        await service.open()
        return service

    async def stop(self, service: InventoryService) -> None:
        await service.close()
        await self.states.save()
        self.states.close()

    def weigh(self, device: str, kg: float, stable: bool = True, dt: float = 1.0) -> None:
        self.clock.now += dt
        self.pipe.feed(WeightSample(device, kg, stable, self.clock.now, 0.0))

    def sell(self, sku: str | None, qty: str, text: str | None = None) -> None:
        self.clock.now += 1
        price = Decimal("1.00")
        sale = Sale("till", "1", sku, Decimal(qty), price, price, "EUR", self.clock.now, 0.0, text)
        self.pipe.feed(sale)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


async def test_scale_counts_units_from_stable_weights_only(rig: Rig) -> None:
    service = await rig.start()
    rig.weigh("scale-a", 0.5 + 10 * 0.2)  # tare 0.5 kg + 10 bananas
    first = service.estimates()["A1"]
    assert (first.qty, first.source, first.confidence) == (10, EstimateSource.SCALE, 1.0)
    assert first.updated == rig.clock.now
    rig.weigh("scale-a", 0.5 + 7.1 * 0.2, stable=False)  # a hand on the scale
    assert service.estimates()["A1"].qty == 10
    for _ in range(3):  # three stable readings hold the new count (count_hold: 3)
        rig.weigh("scale-a", 0.5 + 8.1 * 0.2)
    now = service.estimates()["A1"]
    assert now.qty == 8
    assert now.confidence == pytest.approx(0.8)  # 0.1 unit off a whole count
    assert now.capacity == 40
    rig.pipe.feed(
        WeightSample(
            "scale-a", math.nan, stable=False, ts=rig.clock.now, mono=0.0, fault="overload"
        )
    )
    assert service.estimates()["A1"].qty == 8
    await rig.stop(service)


async def test_scale_without_unit_weight_is_not_counted(rig: Rig) -> None:
    service = await rig.start()
    rig.weigh("scale-x", 5.0)  # B2 has no unit weight; scale-d names no SKU
    rig.weigh("scale-d", 5.0)
    assert service.estimates()["B2"].source is EstimateSource.BOOK
    assert service.stats()["scales"] == 1
    await rig.stop(service)


async def test_rfid_wins_over_the_scale(rig: Rig) -> None:
    service = await rig.start(presence=True)
    rig.weigh("scale-a", 0.5 + 10 * 0.2)
    rig.presence.counts["A1"] = (12, T0 - 60)
    estimate = service.estimates()["A1"]
    assert (estimate.qty, estimate.source, estimate.updated) == (12, EstimateSource.RFID, T0 - 60)
    await rig.stop(service)


async def test_sales_subtract_from_the_last_known_quantity(rig: Rig) -> None:
    service = await rig.start()
    # Milk has no sensor: capacity is the assumed start, sales come off it.
    assert service.estimates()["B2"].source is EstimateSource.BOOK
    assert service.estimates()["B2"].qty == 24
    rig.sell("B2", "2")
    rig.sell(None, "1", text="milk 1l")  # a pole display's name, resolved through the catalog
    rig.sell(None, "1", text="UNKNOWN THING")
    rig.sell("77", "3")  # a PLU: Cola has no capacity and no sensor, so no estimate
    milk = service.estimates()["B2"]
    assert (milk.qty, milk.source) == (21, EstimateSource.SALES)
    assert milk.confidence < 0.3
    assert "C3" not in service.estimates()
    assert service.stats()["unresolved_sales"] == 1
    await rig.stop(service)


async def test_a_quiet_scale_falls_back_to_sales_since_its_last_count(rig: Rig) -> None:
    service = await rig.start()
    rig.weigh("scale-a", 0.5 + 10 * 0.2)
    assert service.estimates()["A1"].source is EstimateSource.SCALE
    rig.clock.now += inventory.SCALE_STALE + 1
    rig.sell("A1", "3")
    stale = service.estimates()["A1"]
    assert (stale.qty, stale.source) == (7, EstimateSource.SALES)
    await rig.stop(service)


async def test_refill_seen_by_the_scale_is_dated(rig: Rig) -> None:
    service = await rig.start()
    rig.weigh("scale-a", 0.5 + 3 * 0.2)
    service.estimates()
    rig.weigh("scale-a", 0.5 + 30 * 0.2)  # a jump larger than count_jump: believed at once
    estimate = service.estimates()["A1"]
    assert estimate.qty == 30
    assert estimate.last_refill == rig.clock.now
    await rig.stop(service)


async def test_publish_full_snapshot_then_changes_only(rig: Rig) -> None:
    service = await rig.start()
    rig.weigh("scale-a", 0.5 + 10 * 0.2)
    assert await service.publish(rig.clock.now) == 2  # A1 (scale) and B2 (book)
    topic, body, cls = rig.sink.messages[-1]
    assert (topic, cls) == ("inventory", "telemetry")
    assert body["full"] is True
    validate(
        "inventory",
        {"id": "01J0000000000000000000000A", "ts": "2027-01-01T00:00:00.000Z", "gw": "g1", **body},
    )
    rows = {r["sku"]: r for r in body["items"]}
    assert rows["A1"]["on_shelf"] == 10 and rows["A1"]["zone"] == "fruit"
    assert rows["B2"]["source"] == "book"

    rig.clock.now += 1
    assert await service.publish(rig.clock.now) == 0  # nothing changed: nothing sent
    assert len(rig.sink.messages) == 1
    rig.sell("B2", "1")
    assert await service.publish(rig.clock.now) == 1
    body = rig.sink.messages[-1][1]
    assert "full" not in body
    assert [(r["sku"], r["on_shelf"], r["source"]) for r in body["items"]] == [("B2", 23, "sales")]
    rig.clock.now += inventory.SNAPSHOT_EVERY
    assert await service.publish(rig.clock.now) == 2  # the hourly snapshot lists everything
    await rig.stop(service)


async def test_large_snapshot_travels_in_parts(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inventory, "PART_ITEMS", 1)
    service = await rig.start()
    rig.weigh("scale-a", 0.5 + 10 * 0.2)
    await service.publish(rig.clock.now)
    parts = [body["part"] for _, body, _ in rig.sink.messages]
    assert [(p["n"], p["total"]) for p in parts] == [(1, 2), (2, 2)]
    assert parts[0]["of"] == parts[1]["of"]
    for _, body, _ in rig.sink.messages:
        validate(
            "inventory",
            {"id": parts[0]["of"], "ts": "2027-01-01T00:00:00.000Z", "gw": "g1", **body},
        )
    await rig.stop(service)


async def test_the_ledger_survives_a_restart(rig: Rig) -> None:
    service = await rig.start()
    rig.weigh("scale-a", 0.5 + 10 * 0.2)
    await service.publish(rig.clock.now)
    rig.sell("B2", "4")
    rig.sell("A1", "1")
    await rig.stop(service)

    rig.clock.now += inventory.SCALE_STALE + 1  # the scale is not heard again after the restart
    again = await rig.start()
    estimates = again.estimates()
    assert (estimates["B2"].qty, estimates["B2"].source) == (20, EstimateSource.SALES)
    assert (estimates["A1"].qty, estimates["A1"].source) == (9, EstimateSource.SALES)
    rig.clock.now += 1
    # What was published before the restart is remembered: only the changes go out.
    assert await again.publish(rig.clock.now) == 2
    assert "full" not in rig.sink.messages[-1][1]
    await rig.stop(again)


async def test_run_publishes_at_the_window_end(rig: Rig) -> None:
    service = await rig.start()
    service._wall = time.time
    task = asyncio.create_task(service.run(), name="service:inventory")
    try:
        async with asyncio.timeout(3):
            await rig.sink.sent.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    body = rig.sink.messages[0][1]
    assert body["full"] is True and body["window"]["end"].endswith(".000Z")
    await rig.stop(service)


async def test_no_skus_no_service(tmp_path: Path) -> None:
    text = f"gateway: {{store: s1, id: g1, state_dir: {tmp_path}}}\n"
    config = parse_config(text, "t.yaml", discover(), base_dir=tmp_path)
    ctx: Any = ServiceContext(
        config=config,
        sink=Sink(),
        router=None,
        pipeline=Pipe(),  # type: ignore[arg-type]
        states=StateStore(tmp_path / "state.sqlite"),
        supervisor=cast("Any", None),
        catalog=lambda: Catalog([], "EUR"),
        status=dict,
        stamper=cast("Any", None),
        ready=asyncio.Event(),
        core_alive=lambda: True,
        services={},
    )
    assert build(ctx) is None
