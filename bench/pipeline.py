"""Pipeline throughput: driver → emit → queue → pipeline → aggregator → null sink.

Runs N simulated meters emitting readings as fast as the pipeline takes them, on one
event loop (one core), and reports readings per second, CPU microseconds per reading and
peak RSS. Prints a table and writes bench/results/pipeline.json.

    .venv/bin/python bench/pipeline.py [--readings 2000000] [--devices 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Literal

from gateway import Driver, DriverConfig, DriverContext, Reading
from gateway.aggregate import Aggregator, DeviceInfo
from gateway.catalog import Catalog
from gateway.pipeline import Pipeline
from gateway.sinks import NullSink
from gateway.state import StateStore
from gateway.supervisor import RestartPolicy, Supervisor


class BurstConfig(DriverConfig):
    driver: Literal["burst"] = "burst"
    count: int = 1000


class Burst(Driver):
    """Emits `count` readings of 20 registers' worth of metrics, as fast as accepted."""

    name = "burst"
    summary = "benchmark driver"
    Config = BurstConfig

    async def run(self, ctx: DriverContext) -> None:
        assert isinstance(self.config, BurstConfig)
        metrics = [f"reg{i}" for i in range(20)]
        dev = ctx.device_id
        emit = ctx.emit
        n = 0
        while n < self.config.count:
            ts, mono = ctx.clock.now()
            for m in metrics:
                await emit(Reading(dev, m, float(n), "V", ts, mono))
            n += 20
            ctx.health.ok()
        await asyncio.Event().wait()


async def one_run(total: int, devices: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        states = StateStore(Path(tmp) / "s.sqlite")
        states.open()
        queue: asyncio.Queue = asyncio.Queue(maxsize=10_000)
        infos = {f"m{i}": DeviceInfo("burst", None, 60.0) for i in range(devices)}
        sink = NullSink()
        pipeline = Pipeline(queue, sink, Catalog([], "EUR"), Aggregator(60.0, infos))
        consumer = asyncio.create_task(pipeline.run(), name="pipeline")
        sup = Supervisor(queue, states, RestartPolicy())
        per = total // devices
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await sup.apply(
            [(BurstConfig(id=f"m{i}", driver="burst", count=per), Burst) for i in range(devices)]
        )
        target = per // 20 * 20 * devices
        while pipeline.counts["events"] < target:  # noqa: ASYNC110 - a benchmark's coarse poll
            await asyncio.sleep(0.01)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        await sup.stop_all()
        consumer.cancel()
        states.close()
        return {"readings": target, "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    runs = [asyncio.run(one_run(args.readings, args.devices)) for _ in range(args.repeat)]
    rate = statistics.median(r["readings"] / r["wall_s"] for r in runs)
    cpu_us = statistics.median(r["cpu_s"] / r["readings"] * 1e6 for r in runs)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "readings_per_run": runs[0]["readings"],
        "devices": args.devices,
        "runs": args.repeat,
        "readings_per_s_median": round(rate),
        "cpu_us_per_reading_median": round(cpu_us, 3),
        "cpu_s_per_1000_readings": round(cpu_us / 1000, 5),
        "peak_rss_mb": round(rss_mb, 1),
        "goal_readings_per_s": 100_000,
    }
    print(f"{'metric':<32}{'value':>14}")
    for key, value in result.items():
        print(f"{key:<32}{value:>14}")
    out = Path(__file__).parent / "results" / "pipeline.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
