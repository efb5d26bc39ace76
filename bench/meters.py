"""Meters: Modbus TCP transactions/s on one link, RTU bus share at 9600 baud, the guide's load.

1. One Modbus TCP link against the simulator (its own process): transactions per second
   and the gateway process's CPU per transaction (frame, schedule, parse, decode).
2. Five Modbus RTU drivers on one link, at 9600 baud, against the simulator emulating the
   line (bytes x 10 bits ÷ baud + 5 ms turnaround): the share of the wall time the bus is
   busy, counting the configured pauses as busy (contract.md). Goal >= 90%.
3. The guide's workload: 50 meters x 20 registers every 50 ms over Modbus TCP (50 links),
   CPU seconds of the gateway process per 1,000 values. Goal <= 0.012.

Prints a table and writes bench/results/meters.json.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing as mp
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.modbus.coalesce import extract, plan
from drivers.modbus.config import ModbusConfig
from drivers.modbus.driver import Modbus
from drivers.modbus.profiles import load_profile
from drivers.modbus.protocol import MbapReceiver, mbap_frame, parse_reply, read_pdu
from drivers.modbus.registers import RegisterSpec
from drivers.modbus.simulator import BITS_PER_CHAR, ModbusSimulator
from gateway.aggregate import Aggregator
from gateway.catalog import Catalog
from gateway.config.links import LinkConfig
from gateway.driver import Clock, DeviceState, DriverContext
from gateway.events import Reading
from gateway.health import Health
from gateway.links import Link, LinkManager
from gateway.logs import DeviceLog
from gateway.pipeline import Pipeline
from gateway.sinks import NullSink

if TYPE_CHECKING:
    from gateway.events import Event

BAUD, TURNAROUND, PAUSE = 9600, 0.005, 0.005
TWENTY = [
    RegisterSpec(name=f"r{i}", type="holding", address=i, data_type="uint16") for i in range(20)
]


def _serve(kind: str, count: int, line_baud: int | None, conn: Any) -> None:
    """Simulator process: serve, send the ports, run until the pipe closes."""
    logging.getLogger("pymodbus").setLevel(logging.WARNING)

    async def main() -> None:
        sims, ports = [], []
        for _ in range(count):
            if kind == "sdm630":
                units = {1: load_profile("eastron_sdm630").registers}
            elif kind == "bus":
                units = dict.fromkeys(range(1, 6), TWENTY)
            else:
                units = {1: TWENTY}
            sim = ModbusSimulator.of(units, changing=False, line_baud=line_baud)
            sim.turnaround = TURNAROUND
            ports.append(await sim.start_tcp(framing="rtu" if kind == "bus" else "tcp"))
            sims.append(sim)
        conn.send(ports)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        for sim in sims:
            await sim.stop()

    asyncio.run(main())


class Simulators:
    """Simulators in a child process, so the gateway's CPU is measured alone."""

    def __init__(self, kind: str, count: int = 1, line_baud: int | None = None) -> None:
        self.parent, child = mp.Pipe()
        self.proc = mp.get_context("spawn").Process(
            target=_serve, args=(kind, count, line_baud, child), daemon=True
        )

    def __enter__(self) -> list[int]:
        self.proc.start()
        ports: list[int] = self.parent.recv()
        return ports

    def __exit__(self, *exc: object) -> None:
        self.parent.send("stop")
        self.proc.join(10)


async def tcp_link(port: int, seconds: float) -> dict[str, float]:
    """Back-to-back reads of the SDM630's first block (80 registers) on one link."""
    block = plan(load_profile("eastron_sdm630").registers, max_count=80)[0]
    link = Link(LinkConfig(id="lan", url=f"tcp://127.0.0.1:{port}"))
    pdu = read_pdu(block.function_code, block.address, block.count)
    n = 0
    cpu, start = time.process_time(), time.perf_counter()
    while time.perf_counter() - start < seconds:
        n += 1
        reply = await link.exchange(
            mbap_frame(n % 0xFFFF + 1, 1, pdu), MbapReceiver(n % 0xFFFF + 1, 1)
        )
        extract(block, parse_reply(block.function_code, block.count, reply))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    await link.close()
    return {"transactions_per_s": n / wall, "cpu_us_per_transaction": cpu / n * 1e6}


def _context(device: str, queue: asyncio.Queue[Event], links: LinkManager) -> DriverContext:
    log = DeviceLog(logging.getLogger("bench"), {"device": device})
    return DriverContext(device, log, Clock(), Health(log), DeviceState(), queue, links)


async def _run_drivers(
    configs: list[dict[str, Any]], links: LinkManager, seconds: float
) -> tuple[list[DriverContext], int, int, float, float]:
    """Run Modbus drivers into the daemon's pipeline (15-minute windows, no sink) for a
    measured window after a warm-up.

    Returns the contexts, values and polls within the window, wall and CPU seconds.
    """
    queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)
    pipeline = Pipeline(queue, NullSink(), Catalog([], "EUR"), Aggregator(900.0, {}))
    values = 0

    def count(_: Reading) -> None:  # called for every reading, batched or not
        nonlocal values
        values += 1

    pipeline.subscribe(Reading, count)

    drivers = [Modbus(ModbusConfig.model_validate(c)) for c in configs]
    contexts = [_context(c["id"], queue, links) for c in configs]
    consumer = asyncio.create_task(pipeline.run(), name="pipeline")
    tasks = [
        asyncio.create_task(d.run(x), name=f"d{i}")
        for i, (d, x) in enumerate(zip(drivers, contexts, strict=True))
    ]
    await asyncio.sleep(0.5)  # connections made, first polls done

    def polls() -> int:
        return sum(c.health.counters.get("polls", 0) for c in contexts)

    got, done, cpu, start = values, polls(), time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    got, done = values - got, polls() - done
    for task in [*tasks, consumer]:
        task.cancel()
    await asyncio.gather(*tasks, consumer, return_exceptions=True)
    await links.close()
    return contexts, got, done, wall, cpu


async def rtu_bus(port: int, seconds: float) -> dict[str, float]:
    """Five meters polled as fast as the bus allows; share of time the line is busy."""
    links = LinkManager([LinkConfig(id="bus", url=f"tcp://127.0.0.1:{port}", pause=f"{PAUSE}s")])
    configs = [
        {
            "id": f"m{u}",
            "driver": "modbus",
            "link": "bus",
            "framing": "rtu",
            "unit_id": u,
            "registers": [s.model_dump(by_alias=True, exclude_none=True) for s in TWENTY],
            "interval": "100ms",
            "offset": f"{u * 20}ms",
        }
        for u in range(1, 6)
    ]
    contexts, _, polls, wall, _ = await _run_drivers(configs, links, seconds)
    failed = sum(c.health.counters.get("failed_polls", 0) for c in contexts)
    # One read of 20 registers: request 8 bytes, reply 5 + 40, 3.5 characters after each.
    line = (8 + 5 + 40 + 7) * BITS_PER_CHAR / BAUD + TURNAROUND + PAUSE
    busy = polls * line  # one read per poll
    return {
        "transactions_per_s": polls / wall,
        "bus_share": busy / wall,
        "theoretical_per_s": 1 / line,
        "failed_polls": failed,
    }


async def guide_load(ports: list[int], seconds: float) -> dict[str, float]:
    """50 meters x 20 registers every 50 ms over Modbus TCP."""
    configs = [
        {
            "id": f"m{i}",
            "driver": "modbus",
            "url": f"tcp://127.0.0.1:{p}",
            "registers": [s.model_dump(by_alias=True, exclude_none=True) for s in TWENTY],
            "interval": "50ms",
            "offset": f"{i}ms",
        }
        for i, p in enumerate(ports)
    ]
    contexts, values, _, wall, cpu = await _run_drivers(configs, LinkManager(), seconds)
    skipped = sum(c.health.counters.get("skipped_polls", 0) for c in contexts)
    return {
        "values_per_s": values / wall,
        "cpu_s_per_1000_values": cpu / values * 1000,
        "skipped_polls": skipped,
    }


def main() -> None:
    """Run the three measurements, print a table, write the JSON."""
    results: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine()}
    with Simulators("sdm630") as (port,):
        results["modbus_tcp_link"] = asyncio.run(tcp_link(port, 5.0))
    with Simulators("bus", line_baud=BAUD) as (port,):
        results["rtu_9600"] = asyncio.run(rtu_bus(port, 10.0))
    with Simulators("meter", count=50) as ports:
        results["guide_50x20_50ms"] = asyncio.run(guide_load(ports, 10.0))
    tcp, rtu, guide = results["modbus_tcp_link"], results["rtu_9600"], results["guide_50x20_50ms"]
    rows = [
        (
            "Modbus TCP, one link",
            f"{tcp['transactions_per_s']:,.0f} transactions/s",
            f"{tcp['cpu_us_per_transaction']:.0f} µs CPU/transaction",
            "",
        ),
        (
            "RTU 9600 baud, 5 meters",
            f"{rtu['transactions_per_s']:.1f} transactions/s (max {rtu['theoretical_per_s']:.1f})",
            f"bus busy {rtu['bus_share']:.1%}",
            "goal >= 90%",
        ),
        (
            "50 meters x 20 regs / 50 ms",
            f"{guide['values_per_s']:,.0f} values/s",
            f"{guide['cpu_s_per_1000_values']:.4f} CPU-s/1000 values",
            "goal <= 0.012",
        ),
    ]
    for row in rows:
        print(f"{row[0]:<30} {row[1]:<38} {row[2]:<32} {row[3]}")
    out = Path(__file__).parent / "results" / "meters.json"
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
