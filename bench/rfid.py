"""LLRP tag reports per second decoded into presence state, on one core, at flat memory.

A population of `--tags` SGTIN-96 items on four antennas (two zones) is read round after
round; between rounds 1 % are sold and replaced by new items, so tags keep arriving and
departing (absence timeout 1 s) and the presence state must stay flat in size. The
rounds are pre-encoded as LLRP byte streams (untimed), then replayed in 64 KiB chunks, as
TCP delivers them, for `--seconds`. Cases:

- `presence_direct_n1` / `_n100`: MessageReader + RO_ACCESS_REPORT decode + TagRead +
  `PresenceTracker.observe` (+ a sweep every 10,000 reports); one tag per report (our
  ROSpec's N = 1) or 100 per report.
- `driver_pipeline_n1`: the real path in one event loop — the LLRP driver's message
  handler (`Session._handle`: decode, TagRead, `ctx.emit` into the bounded queue), the
  pipeline consuming it (including its interim per-antenna RSSI aggregation) and presence
  subscribed to it.
- `driver_pipeline_n1_no_rssi_agg`: the same without the pipeline's RSSI aggregation, to
  show what it costs.

Prints a table and writes bench/results/rfid.json.

    .venv/bin/python bench/rfid.py [--tags 10000] [--seconds 3] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.llrp.config import LlrpConfig
from drivers.llrp.driver import Session
from drivers.llrp.protocol import MessageReader, MessageType, decode_ro_access_report
from gateway.aggregate import Aggregator
from gateway.catalog import Catalog, Item
from gateway.driver import Clock, DeviceState, DriverContext
from gateway.epc import encode_sgtin96
from gateway.events import Event, TagRead
from gateway.health import Health
from gateway.pipeline import Pipeline
from gateway.presence import PresenceTracker, ReaderZones
from gateway.sinks import NullSink

if TYPE_CHECKING:
    from collections.abc import Callable

GTINS = ["80614141123458", "04012345123456", "00614141000005"]
CHUNK = 64 * 1024
_TAG = struct.Struct(">HHB12sBHBbBQBH")
_HDR = struct.Struct(">HII")


def rss_mb() -> float:
    """Resident set size now (not the peak), from /proc."""
    with Path("/proc/self/statm").open() as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def rounds(tags: int, count: int, per_report: int, seed: int = 1) -> list[bytes]:
    """`count` inventory rounds as LLRP byte streams; 1 % of items sold+replaced per round."""
    rng = random.Random(seed)
    serial = 0
    population: list[tuple[bytes, int]] = []
    for _ in range(tags):
        serial += 1
        epc = bytes.fromhex(encode_sgtin96(rng.choice(GTINS), serial, company_prefix_digits=7))
        population.append((epc, rng.randint(1, 4)))
    out = []
    msg_id = 0
    for _ in range(count):
        stream = bytearray()
        for start in range(0, len(population), per_report):
            body = b"".join(
                _TAG.pack(
                    240,
                    34,
                    0x8D,
                    epc,
                    0x81,
                    ant,
                    0x86,
                    rng.randint(-70, -40),
                    0x82,
                    1_700_000_000_000_000,
                    0x88,
                    1,
                )
                for epc, ant in population[start : start + per_report]
            )
            msg_id += 1
            stream += _HDR.pack((1 << 10) | MessageType.RO_ACCESS_REPORT, 10 + len(body), msg_id)
            stream += body
        out.append(bytes(stream))
        for i in rng.sample(range(len(population)), max(1, tags // 100)):
            serial += 1
            epc = bytes.fromhex(encode_sgtin96(rng.choice(GTINS), serial, company_prefix_digits=7))
            population[i] = (epc, rng.randint(1, 4))
    return out


def catalog() -> Catalog:
    return Catalog([Item(f"sku-{i}", f"item {i}", gtin=g) for i, g in enumerate(GTINS)], "EUR")


def tracker() -> PresenceTracker:
    zones = ReaderZones({1: "shelf-a", 2: "shelf-a", 3: "shelf-b", 4: "shelf-b"}, "r", 1.0)
    cat = catalog()
    return PresenceTracker({"rfid-1": zones}, lambda: cat)


def direct(streams: list[bytes], seconds: float) -> dict[str, Any]:
    """Framing + decode + TagRead + presence, synchronously; a sweep per 64 KiB chunk."""
    pres = tracker()
    framer = MessageReader()
    observe = pres.observe
    clock = Clock()
    n = 0
    rss0 = rss_mb()
    warm = 0.0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        for stream in streams:
            for pos in range(0, len(stream), CHUNK):
                ts, mono = clock.now()
                for msg in framer.feed(stream[pos : pos + CHUNK]):
                    for t in decode_ro_access_report(msg.body).tags:
                        observe(TagRead("rfid-1", t.antenna, t.epc, t.rssi, ts, mono, t.seen_count))
                        n += 1
                pres.sweep()
            warm = warm or (time.perf_counter() - wall0 > seconds / 3 and rss_mb())
    return finish(n, wall0, cpu0, warm or rss0, pres)


def finish(n: int, wall0: float, cpu0: float, warm: float, pres: PresenceTracker) -> dict[str, Any]:
    """Rates, and RSS after the first third of the run (warm) and at its end."""
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "reports": n,
        "reports_per_s": round(n / wall),
        # The per-core rate: wall-clock rates drop when other processes share the cores.
        "reports_per_cpu_s": round(n / cpu),
        "cpu_us_per_report": round(cpu / n * 1e6, 3),
        "tags_present_at_end": pres.stats()["tags"],
        "departures": pres.counters["departures"],
        "rss_mb_warm": round(warm, 1),
        "rss_mb_end": round(rss_mb(), 1),
    }


async def through_pipeline(
    streams: list[bytes], seconds: float, *, rssi_agg: bool
) -> dict[str, Any]:
    """The driver's handler → bounded queue → pipeline (+ presence), in one event loop."""
    pres = tracker()
    queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)
    pipeline = Pipeline(queue, NullSink(), catalog(), Aggregator(60.0, {}))
    if not rssi_agg:
        pipeline._handlers[TagRead] = lambda _t: None
    pipeline.subscribe(TagRead, pres.observe)
    log = logging.LoggerAdapter(logging.getLogger("bench"), {})
    ctx = DriverContext("rfid-1", log, Clock(), Health(log), DeviceState(), queue)
    session = Session(LlrpConfig(id="rfid-1", driver="llrp", host="127.0.0.1"), ctx)
    consumer = asyncio.create_task(pipeline.run(), name="pipeline")
    handle = session._handle
    framer = session._framer
    n = 0
    rss0 = rss_mb()
    warm = 0.0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        for stream in streams:
            for pos in range(0, len(stream), CHUNK):
                for msg in framer.feed(stream[pos : pos + CHUNK]):
                    await handle(msg)
                    n += 1
                pres.sweep()
                await asyncio.sleep(0)  # a socket read yields to the loop once per chunk
            warm = warm or (time.perf_counter() - wall0 > seconds / 3 and rss_mb())
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    await pipeline.flush()  # what is still queued, inside the timed CPU
    return finish(n, wall0, cpu0, warm or rss0, pres)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    n1 = rounds(args.tags, args.rounds, 1)
    n100 = rounds(args.tags, args.rounds, 100)
    cases: dict[str, Callable[[], dict[str, Any]]] = {
        "presence_direct_n1": lambda: direct(n1, args.seconds),
        "presence_direct_n100": lambda: direct(n100, args.seconds),
        "driver_pipeline_n1": lambda: asyncio.run(
            through_pipeline(n1, args.seconds, rssi_agg=True)
        ),
        "driver_pipeline_n1_no_rssi_agg": lambda: asyncio.run(
            through_pipeline(n1, args.seconds, rssi_agg=False)
        ),
    }
    results = {}
    print(
        f"{'case':<32} {'reports/s':>10} {'per CPU-s':>10} {'CPU us/rep':>10} {'tags':>6} "
        f"{'RSS MB warm→end':>16}"
    )
    for name, fn in cases.items():
        r = results[name] = fn()
        rss = f"{r['rss_mb_warm']:.1f}→{r['rss_mb_end']:.1f}"
        print(
            f"{name:<32} {r['reports_per_s']:>10,} {r['reports_per_cpu_s']:>10,} "
            f"{r['cpu_us_per_report']:>10.3f} "
            f"{r['tags_present_at_end']:>6} {rss:>16}"
        )
    out = {
        "population": args.tags,
        "rounds": args.rounds,
        "seconds_per_case": args.seconds,
        "goal_reports_per_s": 100_000,
        "cases": results,
    }
    path = Path(__file__).parent / "results" / "rfid.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
