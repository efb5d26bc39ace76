"""RFID presence: tag reads become "which tags are on which shelf", per zone and SKU.

A read says a reader saw a tag; presence says the tag *is* in a zone. Each RFID device's
config maps antennas to zones (`zones: {1: shelf-a, 2: shelf-b}`) and sets an absence
timeout: a tag no zone has read for that long has left (a tag missed for one inventory
cycle has not). A tag read by two zones belongs to the strongest recent one: its zone
keeps it while that zone read it within the absence timeout, unless the other zone reads
it at least `HYSTERESIS_DB` stronger (so a tag between two antennas does not flap).

Per zone and key — the SKU (SGTIN-96 GTIN → catalog), `gtin:<GTIN-14>` for a GTIN the
catalog lacks, or `None` for non-SGTIN EPCs (counted, passed through raw in the
snapshot) — presence keeps the count on shelf, when it last changed, and arrivals and
departures in the current window (`aggregation.window`). Nothing is published here: the
inventory service asks `on_shelf(sku)`, status shows `snapshot()`.

The hot path (`PresenceTracker.observe`, a pipeline subscriber) costs about a
microsecond for a known tag: two dict lookups and an `OrderedDict.move_to_end`. Tags sit
in one OrderedDict per absence timeout, oldest read first, so the sweep only looks at the
tags that are due. EPCs are decoded once per arrival, never per read.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from gateway.config.fields import As
from gateway.config.types import duration
from gateway.driver import Clock, DriverConfig
from gateway.epc import OtherEpc, decode_epc
from gateway.events import TagRead
from gateway.services import Service

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from gateway.catalog import Catalog
    from gateway.config import Config
    from gateway.services import ServiceContext

Antenna = Annotated[int, Field(ge=1, le=65535)]
ZoneName = Annotated[str, Field(min_length=1)]
HYSTERESIS_DB = 3.0
"""Another zone must read a tag this much stronger to take it while its zone still sees it."""
NO_RSSI = -1000.0
DEFAULT_TIMEOUT = 30.0
RAW_SAMPLE = 10
"""Raw non-SGTIN EPCs listed per zone in the snapshot (all of them are counted)."""


class RfidConfig(DriverConfig):
    """Fields every RFID reader's config has: antenna → zone and the absence timeout."""

    zones: dict[Antenna, ZoneName] = Field(
        default_factory=dict,
        description="Antenna number (1-based) → zone name; unlisted antennas belong to "
        "`zone`, else to a zone named after the device id.",
    )
    absence_timeout: Annotated[float, As(duration("1s", "1h"))] = Field(
        DEFAULT_TIMEOUT,
        description="A tag no antenna has read for this long has left its zone.",
    )


@dataclass(frozen=True, slots=True)
class ReaderZones:
    """How one reader's antennas map to zones, and its absence timeout."""

    zones: dict[int, str]
    default: str
    timeout: float


def readers_from(devices: Iterable[DriverConfig]) -> dict[str, ReaderZones]:
    """The zone map of every RFID device in a config."""
    return {
        d.id: ReaderZones(dict(d.zones), d.zone or d.id, d.absence_timeout)
        for d in devices
        if isinstance(d, RfidConfig)
    }


class _Tag:
    __slots__ = ("key", "last", "rssi", "timeout", "zone", "zone_seen")

    def __init__(
        self, key: str | None, zone: str, rssi: float, mono: float, timeout: float
    ) -> None:
        self.key = key
        self.zone = zone
        self.rssi = rssi  # last RSSI in its zone
        self.zone_seen = mono  # last read in its zone
        self.last = mono  # last read in any zone
        self.timeout = timeout


class _Count:
    __slots__ = ("arrivals", "changed", "count", "departures", "raw")

    def __init__(self) -> None:
        self.count = 0
        self.changed = 0.0
        self.arrivals = 0
        self.departures = 0
        self.raw: set[str] | None = None


class PresenceTracker:
    """Presence state, IO-free: `observe()` each read, `sweep()` now and then, time injected."""

    def __init__(
        self,
        readers: dict[str, ReaderZones],
        catalog: Callable[[], Catalog],
        *,
        clock: Clock | None = None,
        hysteresis: float = HYSTERESIS_DB,
    ) -> None:
        self._readers = dict(readers)
        self._catalog = catalog
        self._clock = clock or Clock()
        self.hysteresis = hysteresis
        self._tags: dict[str, _Tag] = {}
        self._buckets: dict[float, OrderedDict[str, _Tag]] = {}
        self._zones: dict[str, dict[str | None, _Count]] = {}
        self.started_wall, self.started_mono = self._clock.now()
        self.counters = {"reads": 0, "arrivals": 0, "departures": 0, "moves": 0, "other_epcs": 0}
        self.window: dict[str, Any] | None = None

    def configure(self, readers: dict[str, ReaderZones]) -> None:
        """Apply a reloaded zone map; tags keep their zones until read again."""
        self._readers = dict(readers)

    def observe(self, t: TagRead) -> None:
        """Fold one read into presence (the pipeline's TagRead subscriber: keep it cheap)."""
        self.counters["reads"] += 1
        reader = self._readers.get(t.device)
        if reader is None:
            # A reader missing from the config (a test, a third-party driver): one zone.
            reader = self._readers[t.device] = ReaderZones({}, t.device, DEFAULT_TIMEOUT)
        zone = reader.zones.get(t.antenna) or reader.default
        rssi = NO_RSSI if t.rssi is None else t.rssi
        mono = t.mono
        epc = t.epc
        tag = self._tags.get(epc)
        if tag is None:
            tag = self._tags[epc] = _Tag(self._key(epc), zone, rssi, mono, reader.timeout)
            self._bucket(reader.timeout)[epc] = tag
            self._arrive(zone, tag.key, t.ts, epc)
            return
        if tag.zone == zone:
            tag.rssi = rssi
            tag.zone_seen = mono
        elif mono - tag.zone_seen >= tag.timeout or rssi > tag.rssi + self.hysteresis:
            # Its zone lost it (missed for the absence timeout) or another zone reads it
            # clearly stronger: the strongest recent zone wins.
            self.counters["moves"] += 1
            self._depart(tag.zone, tag.key, t.ts, epc)
            self._arrive(zone, tag.key, t.ts, epc)
            tag.zone, tag.rssi, tag.zone_seen = zone, rssi, mono
        tag.last = mono
        if tag.timeout != reader.timeout:
            del self._buckets[tag.timeout][epc]
            tag.timeout = reader.timeout
            self._bucket(reader.timeout)[epc] = tag
        else:
            self._buckets[tag.timeout].move_to_end(epc)

    def sweep(self) -> int:
        """Let tags that no zone read for their absence timeout depart; returns how many."""
        wall, mono = self._clock.now()
        gone = 0
        for timeout, bucket in self._buckets.items():
            limit = mono - timeout
            while bucket:
                epc = next(iter(bucket))
                tag = bucket[epc]
                if tag.last > limit:
                    break
                del bucket[epc]
                del self._tags[epc]
                self._depart(tag.zone, tag.key, wall, epc)
                gone += 1
        return gone

    def close_window(self, start: float, end: float) -> dict[str, Any]:
        """End the arrivals/departures window: keep its totals as `window`, start anew."""
        zones: dict[str, dict[str, dict[str, int]]] = {}
        for zone, counts in self._zones.items():
            for key, c in counts.items():
                if c.arrivals or c.departures:
                    name = "other" if key is None else key
                    zones.setdefault(zone, {})[name] = {
                        "arrivals": c.arrivals,
                        "departures": c.departures,
                    }
                    c.arrivals = c.departures = 0
        self.window = {"start": start, "end": end, "zones": zones}
        return self.window

    def rebuild(self) -> None:
        """Resolve every present tag's key again (the catalog changed) and recount."""
        now = self._clock.now()[0]
        self._zones.clear()
        for epc, tag in self._tags.items():
            tag.key = self._key(epc)
            c = self._count(tag.zone, tag.key)
            c.count += 1
            c.changed = now
            if tag.key is None:
                self._remember_raw(c, epc)

    def on_shelf(self, sku: str) -> tuple[int, float] | None:
        """Tags of `sku` in its catalog zone (all zones if it has none) and when that last
        changed; None when presence knows nothing about it."""
        item = self._catalog().items.get(sku)
        zone = item.zone if item is not None else None
        if zone is not None:
            c = self._zones.get(zone, {}).get(sku)
            if c is not None:
                return c.count, c.changed
            if self._covers(zone):
                # An RFID zone that has not seen the SKU for a whole absence timeout since
                # start really holds none of it: that is the stockout signal.
                return 0, self.started_wall
            return None
        found = [counts[sku] for counts in self._zones.values() if sku in counts]
        if not found:
            return None
        return sum(c.count for c in found), max(c.changed for c in found)

    def snapshot(self) -> dict[str, Any]:
        """Per zone: tags present, count per key, raw sample of non-SGTIN EPCs; the last window."""
        zones: dict[str, Any] = {}
        for zone, counts in sorted(self._zones.items()):
            skus = {k: c.count for k, c in counts.items() if k is not None and c.count}
            other = counts.get(None)
            zones[zone] = {
                "tags": sum(c.count for c in counts.values()),
                "skus": dict(sorted(skus.items())),
                "other": other.count if other is not None else 0,
                "other_epcs": sorted(other.raw or ())[:RAW_SAMPLE] if other else [],
            }
        return {"tags": len(self._tags), "zones": zones, "window": self.window, **self.counters}

    def stats(self) -> dict[str, Any]:
        """Counters for status and metrics (the small part of the snapshot)."""
        return {"tags": len(self._tags), "zones": len(self._zones), **self.counters}

    def _covers(self, zone: str) -> bool:
        for r in self._readers.values():
            if zone == r.default or zone in r.zones.values():
                return self._clock.now()[1] - self.started_mono >= r.timeout
        return False

    def _key(self, epc: str) -> str | None:
        decoded = decode_epc(epc)
        if isinstance(decoded, OtherEpc):
            self.counters["other_epcs"] += 1
            return None
        item = self._catalog().by_gtin(decoded.gtin)
        return item.sku if item is not None else f"gtin:{decoded.gtin}"

    def _bucket(self, timeout: float) -> OrderedDict[str, _Tag]:
        bucket = self._buckets.get(timeout)
        if bucket is None:
            bucket = self._buckets[timeout] = OrderedDict()
        return bucket

    def _count(self, zone: str, key: str | None) -> _Count:
        counts = self._zones.get(zone)
        if counts is None:
            counts = self._zones[zone] = {}
        c = counts.get(key)
        if c is None:
            c = counts[key] = _Count()
        return c

    def _remember_raw(self, c: _Count, epc: str) -> None:
        if c.raw is None:
            c.raw = set()
        c.raw.add(epc)

    def _arrive(self, zone: str, key: str | None, wall: float, epc: str) -> None:
        c = self._count(zone, key)
        c.count += 1
        c.arrivals += 1
        c.changed = wall
        self.counters["arrivals"] += 1
        if key is None:
            self._remember_raw(c, epc)

    def _depart(self, zone: str, key: str | None, wall: float, epc: str) -> None:
        c = self._count(zone, key)
        c.count -= 1
        c.departures += 1
        c.changed = wall
        self.counters["departures"] += 1
        if c.raw is not None:
            c.raw.discard(epc)


class Presence(Service):
    """The `presence` service: subscribes to TagRead, sweeps absences, closes windows."""

    name = "presence"

    def __init__(self, ctx: ServiceContext, *, clock: Clock | None = None) -> None:
        super().__init__(ctx)
        self.tracker = PresenceTracker(readers_from(ctx.config.devices), ctx.catalog, clock=clock)
        self._clock = clock or Clock()
        self.swept = asyncio.Event()
        """Set after each sweep (tests and status wait on it)."""

    async def open(self) -> None:
        """Subscribe to tag reads (before devices start, so no read is missed)."""
        self.ctx.pipeline.subscribe(TagRead, self.tracker.observe)

    async def run(self) -> None:
        """Sweep absences a few times per absence timeout; close windows on the wall clock."""
        window = self.ctx.config.aggregation.window
        wall, _ = self._clock.now()
        start = math.floor(wall / window) * window
        while True:
            timeouts = [r.timeout for r in readers_from(self.ctx.config.devices).values()]
            # Without readers there is nothing to sweep: wake once per window (an idle
            # gateway must not tick every second; a reload adding a reader is seen then).
            await asyncio.sleep(min([1.0, *(t / 4 for t in timeouts)]) if timeouts else window)
            self.tracker.sweep()
            wall, _ = self._clock.now()
            self.swept.set()
            if wall >= start + window:
                end = math.floor(wall / window) * window
                self.tracker.close_window(start, end)
                start = end
                window = self.ctx.config.aggregation.window

    async def reconfigure(self, config: Config) -> None:
        """New zone maps apply to the next reads; a new catalog re-keys present tags."""
        self.tracker.configure(readers_from(config.devices))
        self.tracker.rebuild()

    def on_shelf(self, sku: str) -> tuple[int, float] | None:
        """Tag count of `sku` in its zone (or all zones) and the wall time it last changed."""
        return self.tracker.on_shelf(sku)

    def snapshot(self) -> dict[str, Any]:
        """Presence per zone for status."""
        return self.tracker.snapshot()

    def stats(self) -> dict[str, Any]:
        """Counters for status and metrics."""
        return self.tracker.stats()


def build(ctx: ServiceContext) -> Presence:
    """Always built: idle without RFID readers, and ready when a reload adds the first."""
    return Presence(ctx)


__all__ = ["Presence", "PresenceTracker", "ReaderZones", "RfidConfig", "build", "readers_from"]
