"""Drain rate of a 100,000-message outbox backlog to a local mosquitto at QoS 1, with RSS.

Prints a table and writes bench/results/uplink.json. Goals (issue 3): >= 10,000 msgs/s,
RSS flat while draining.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import platform
import tempfile
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from gateway.outbox import DeliveryClass, Outbox
from gateway.uplink import MqttSettings, Uplink
from tests.broker import HOST, Broker

BACKLOG = 100_000
PAYLOAD = b'{"id":"01JD8X3Q4V7ZK2M9N5P6R8S0TW","ts":"2026-12-02T10:46:29.123Z","gw":"gw-1","w":1}'


async def _ignore(_name: str, _payload: bytes) -> None:
    return None


def _outbox(path: Path) -> Outbox:
    return Outbox(path, max_size=10**10, min_free_disk=0, commit_interval=0.005, ttl={})


async def _fill(path: Path) -> None:
    ob = _outbox(path)
    await ob.open()
    try:
        await asyncio.gather(
            *(ob.put("telemetry", PAYLOAD, DeliveryClass.TELEMETRY) for _ in range(BACKLOG))
        )
    finally:
        await ob.close()


def _fill_sync(path: Path) -> None:
    asyncio.run(_fill(path))


def _fill_in_child(path: Path) -> None:
    """Fill the backlog in another process, so the RSS measured here is the drain's own
    (as for a daemon restarting with a backlog after an outage)."""
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_fill_sync, args=(path,))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"filling the outbox failed (exit code {child.exitcode})")


async def drain(inflight: int) -> dict[str, object]:
    """Fill the backlog, then time the uplink draining it."""
    with tempfile.TemporaryDirectory() as d:
        broker = Broker(Path(d))
        broker.start()
        _fill_in_child(Path(d) / "o.db")
        ob = _outbox(Path(d) / "o.db")
        await ob.open()
        try:
            cfg = MqttSettings(
                host=HOST,
                port=broker.port,
                client_id="bench",
                prefix="storegw/b/gw",
                gw="gw",
                inflight=inflight,
            )
            up = Uplink(cfg, ob, birth=lambda: {"state": "online"}, on_command=_ignore)
            proc = psutil.Process()
            rss: list[int] = []
            start = time.perf_counter()
            task = asyncio.create_task(up.run(), name="uplink")
            while ob.stats()["depth"]["telemetry"] > 0:
                rss.append(proc.memory_info().rss)
                await asyncio.sleep(0.1)  # sampling period
            elapsed = time.perf_counter() - start
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            await ob.close()
            broker.stop()
    mb = [r / 2**20 for r in rss] or [0.0]
    return {
        "backlog": BACKLOG,
        "inflight": inflight,
        "seconds": round(elapsed, 2),
        "msgs_per_s": round(BACKLOG / elapsed),
        "rss_mb_first": round(mb[0], 1),
        "rss_mb_peak": round(max(mb), 1),
        "rss_mb_last": round(mb[-1], 1),
        "rtt_ms_median": up.stats()["rtt_ms"],
        "samples": len(rss),
    }


def main() -> None:
    """Run the scenarios, print a table, write the JSON."""
    rows = [asyncio.run(drain(n)) for n in (100, 500)]
    cols = ["inflight", "seconds", "msgs_per_s", "rss_mb_first", "rss_mb_peak", "rss_mb_last"]
    print(" | ".join(f"{c:>12}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r[c]!s:>12}" for c in cols))
    out = Path(__file__).parent / "results" / "uplink.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {"machine": platform.platform(), "goal_msgs_per_s": 10_000, "runs": rows}, indent=2
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
