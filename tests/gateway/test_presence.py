"""Presence: reads → tags per zone and SKU, absence timeout, strongest zone, windows."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from gateway.aggregate import Aggregator
from gateway.catalog import Catalog, Item
from gateway.config import parse_config
from gateway.epc import encode_sgtin96
from gateway.events import TagRead
from gateway.pipeline import Pipeline
from gateway.plugins import discover
from gateway.presence import Presence, PresenceTracker, ReaderZones, build
from gateway.sinks import NullSink

if TYPE_CHECKING:
    from pathlib import Path

MILK = "04012345123456"
PENCIL = "80614141123458"
STRANGER = "00614141000005"  # a valid GTIN that is not in the catalog
NOT_SGTIN = "e2003098881900722140369e"  # a TID-style EPC: header 0xE2, no SGTIN
CATALOG = Catalog(
    [
        Item("milk", "Milk 1 l", gtin=MILK, zone="shelf-a"),
        Item("pencil", "Pencil HB", gtin=PENCIL),
        Item("bread", "Bread", zone="shelf-b"),
        Item("salt", "Salt", zone="backroom"),
    ],
    "EUR",
)


class FakeClock:
    """Wall = 1,000,000 + mono; moved by hand."""

    def __init__(self) -> None:
        self.mono = 0.0

    def now(self) -> tuple[float, float]:
        return 1_000_000.0 + self.mono, self.mono


def tag(gtin: str, serial: int) -> str:
    return encode_sgtin96(gtin, serial, company_prefix_digits=7)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tracker(clock: FakeClock) -> PresenceTracker:
    readers = {"r1": ReaderZones({1: "shelf-a", 2: "shelf-b"}, "r1", 10.0)}
    return PresenceTracker(readers, lambda: CATALOG, clock=clock)  # type: ignore[arg-type]


def read(
    clock: FakeClock, epc: str, antenna: int = 1, rssi: float | None = -50, device: str = "r1"
) -> TagRead:
    wall, mono = clock.now()
    return TagRead(device, antenna, epc, rssi, wall, mono)


def zone(t: PresenceTracker, name: str) -> dict[str, Any]:
    found: dict[str, Any] = t.snapshot()["zones"][name]
    return found


def test_absence_timeout_a_missed_round_is_not_gone(
    tracker: PresenceTracker, clock: FakeClock
) -> None:
    milk = tag(MILK, 1)
    for second in (0, 1, 2, 6, 15):  # gaps of 4 and 9 s: below the 10 s timeout
        clock.mono = second
        tracker.observe(read(clock, milk))
        assert tracker.sweep() == 0
    assert tracker.on_shelf("milk") == (1, 1_000_000.0)
    clock.mono = 24.9
    assert tracker.sweep() == 0
    clock.mono = 25.0
    assert tracker.sweep() == 1
    assert tracker.on_shelf("milk") == (0, 1_000_025.0)
    assert tracker.snapshot()["tags"] == 0
    assert tracker.counters["arrivals"] == tracker.counters["departures"] == 1


def test_strongest_recent_zone_wins(tracker: PresenceTracker, clock: FakeClock) -> None:
    milk = tag(MILK, 1)
    tracker.observe(read(clock, milk, antenna=1, rssi=-50))
    tracker.observe(read(clock, milk, antenna=2, rssi=-60))  # weaker: stays on shelf-a
    tracker.observe(read(clock, milk, antenna=2, rssi=-52))  # within hysteresis: stays
    assert zone(tracker, "shelf-a")["skus"] == {"milk": 1}
    assert "shelf-b" not in tracker.snapshot()["zones"]
    tracker.observe(read(clock, milk, antenna=2, rssi=-45))  # clearly stronger: moves
    assert zone(tracker, "shelf-a")["skus"] == {}
    assert zone(tracker, "shelf-b")["skus"] == {"milk": 1}
    assert tracker.counters["moves"] == 1
    # shelf-b keeps it while it reads it; shelf-a's weak reads do not take it back ...
    clock.mono = 5
    tracker.observe(read(clock, milk, antenna=1, rssi=-47))
    assert zone(tracker, "shelf-b")["tags"] == 1
    # ... until shelf-b has missed it for the absence timeout.
    clock.mono = 15
    tracker.observe(read(clock, milk, antenna=1, rssi=-70))
    assert zone(tracker, "shelf-a")["skus"] == {"milk": 1}
    assert zone(tracker, "shelf-b")["tags"] == 0
    assert tracker.counters["moves"] == 2
    assert tracker.sweep() == 0  # still present: shelf-a read it just now


def test_counts_and_window_arrivals_departures_per_zone_and_sku(
    tracker: PresenceTracker, clock: FakeClock
) -> None:
    for serial in range(5):
        tracker.observe(read(clock, tag(MILK, serial)))
    tracker.observe(read(clock, tag(PENCIL, 1), antenna=2))
    clock.mono = 8
    for serial in range(3):  # two milk tags are no longer read
        tracker.observe(read(clock, tag(MILK, serial)))
    window = tracker.close_window(0.0, 60.0)
    assert window["zones"] == {
        "shelf-a": {"milk": {"arrivals": 5, "departures": 0}},
        "shelf-b": {"pencil": {"arrivals": 1, "departures": 0}},
    }
    clock.mono = 15
    assert tracker.sweep() == 3  # two milk and the pencil
    window = tracker.close_window(60.0, 120.0)
    assert window["zones"] == {
        "shelf-a": {"milk": {"arrivals": 0, "departures": 2}},
        "shelf-b": {"pencil": {"arrivals": 0, "departures": 1}},
    }
    assert tracker.on_shelf("milk") == (3, 1_000_015.0)
    assert tracker.close_window(120.0, 180.0)["zones"] == {}
    assert tracker.snapshot()["window"]["start"] == 120.0


def test_unknown_epcs_are_counted_and_passed_through_raw(
    tracker: PresenceTracker, clock: FakeClock
) -> None:
    tracker.observe(read(clock, NOT_SGTIN))
    tracker.observe(read(clock, NOT_SGTIN))
    tracker.observe(read(clock, tag(STRANGER, 9)))
    shelf = zone(tracker, "shelf-a")
    assert shelf["tags"] == 2
    assert shelf["other"] == 1
    assert shelf["other_epcs"] == [NOT_SGTIN]
    assert shelf["skus"] == {f"gtin:{STRANGER}": 1}
    assert tracker.counters["other_epcs"] == 1  # decoded once per arrival, not per read
    clock.mono = 11
    tracker.sweep()
    assert zone(tracker, "shelf-a")["other_epcs"] == []


def test_on_shelf_zones_coverage_and_unknown_readers(
    tracker: PresenceTracker, clock: FakeClock
) -> None:
    assert tracker.on_shelf("milk") is None  # shelf-a is an RFID zone, but not warmed up
    assert tracker.on_shelf("salt") is None  # backroom has no reader
    assert tracker.on_shelf("pencil") is None  # no catalog zone and never seen
    tracker.observe(read(clock, tag(PENCIL, 1), antenna=1))
    tracker.observe(read(clock, tag(PENCIL, 2), antenna=2))
    tracker.observe(read(clock, tag(PENCIL, 3), antenna=7))  # unmapped: the reader's zone
    tracker.observe(read(clock, tag(PENCIL, 4), device="other-reader", rssi=None))
    assert tracker.on_shelf("pencil") == (4, 1_000_000.0)  # all zones
    assert set(tracker.snapshot()["zones"]) == {"shelf-a", "shelf-b", "r1", "other-reader"}
    clock.mono = 10  # a whole absence timeout since start: shelf-b really has no bread
    assert tracker.on_shelf("bread") == (0, 1_000_000.0)
    assert tracker.on_shelf("nonexistent") is None


def test_catalog_change_rekeys_present_tags(clock: FakeClock) -> None:
    catalog = {"now": Catalog([Item("milk", "Milk", gtin=MILK)], "EUR")}
    readers = {"r1": ReaderZones({}, "z", 10.0)}
    tracker = PresenceTracker(readers, lambda: catalog["now"], clock=clock)  # type: ignore[arg-type]
    tracker.observe(read(clock, tag(MILK, 1)))
    assert zone(tracker, "z")["skus"] == {"milk": 1}
    catalog["now"] = Catalog([Item("milk-2", "Milk", gtin=MILK)], "EUR")
    tracker.rebuild()
    assert zone(tracker, "z")["skus"] == {"milk-2": 1}


CONFIG = """
gateway: {store: s, id: g, state_dir: %s}
catalog:
  currency: EUR
  skus:
    - {sku: "milk", name: "Milk 1 l", gtin: "%s", zone: shelf-a}
aggregation: {window: 1s}
devices:
  - {id: rfid-1, driver: llrp, host: 127.0.0.1, zones: {1: shelf-a}, absence_timeout: 1s}
  - {id: till, driver: sim_pos, items: [{sku: "milk", price: "1.00"}]}
"""


async def test_service_subscribes_sweeps_and_closes_windows(
    tmp_path: Path, clock: FakeClock
) -> None:
    config = parse_config(CONFIG % (tmp_path, MILK), "t.yaml", discover(), base_dir=tmp_path)
    catalog = Catalog.from_config(config.catalog)
    pipeline = Pipeline(asyncio.Queue(), NullSink(), catalog, Aggregator(1.0, {}))
    ctx: Any = SimpleNamespace(config=config, pipeline=pipeline, catalog=lambda: catalog)
    assert isinstance(build(ctx), Presence)
    presence = Presence(ctx, clock=clock)  # type: ignore[arg-type]
    await presence.open()
    pipeline._handle(read(clock, tag(MILK, 1), device="rfid-1"))
    assert presence.on_shelf("milk") == (1, 1_000_000.0)

    async def next_sweep() -> None:
        presence.swept.clear()
        async with asyncio.timeout(5):
            await presence.swept.wait()

    task = asyncio.create_task(presence.run(), name="service:presence")
    try:
        await next_sweep()
        assert presence.on_shelf("milk") == (1, 1_000_000.0)
        clock.mono = 1.5  # past the 1 s absence timeout and the 1 s window
        await next_sweep()
        assert presence.on_shelf("milk") == (0, 1_000_001.5)
        assert presence.tracker.window == {
            "start": 1_000_000.0,
            "end": 1_000_001.0,
            "zones": {"shelf-a": {"milk": {"arrivals": 1, "departures": 1}}},
        }
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert presence.stats()["departures"] == 1
    assert presence.snapshot()["zones"]["shelf-a"]["tags"] == 0
