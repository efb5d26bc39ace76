"""Durable enqueue rate of the outbox: many producers awaiting `put` (group commit).

Prints a table and writes bench/results/outbox.json. Goal (issue 3): >= 50,000 msgs/s.
"""

from __future__ import annotations

import asyncio
import json
import platform
import tempfile
import time
from pathlib import Path

from gateway.outbox import DeliveryClass, Outbox

PAYLOAD = (
    b'{"id":"01JD8X3Q4V7ZK2M9N5P6R8S0TW","ts":"2026-12-02T10:46:29.123Z","gw":"gw-1",'
    b'"txn":123456,"sku":"4006381333931","qty":1,"price":"12.90","amount":"12.90",'
    b'"currency":"EUR"}'
)


async def run(total: int, producers: int, interval: float) -> dict[str, object]:
    """Enqueue `total` messages from `producers` tasks; returns the measurements."""
    with tempfile.TemporaryDirectory() as d:
        ob = Outbox(
            Path(d) / "outbox.db",
            max_size=10**10,
            min_free_disk=0,
            commit_interval=interval,
            ttl={},
        )
        await ob.open()
        each = total // producers

        async def producer() -> None:
            for _ in range(each):
                await ob.put("events/sales", PAYLOAD, DeliveryClass.BUSINESS)

        start = time.perf_counter()
        await asyncio.gather(*(producer() for _ in range(producers)))
        elapsed = time.perf_counter() - start
        st = ob.stats()
        await ob.close()
    n = each * producers
    return {
        "messages": n,
        "producers": producers,
        "commit_interval_s": interval,
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(n / elapsed),
        "commits": st["commits"],
        "msgs_per_commit": round(n / max(1, st["commits"])),
        # WAL + synchronous=FULL: one fsync of the WAL per commit, plus checkpoints.
        "fsyncs_approx": st["commits"],
    }


def main() -> None:
    """Run the scenarios, print a table, write the JSON."""
    rows = [
        asyncio.run(run(200_000, producers, interval))
        for producers, interval in ((1000, 0.005), (200, 0.005), (1000, 0.02), (10, 0.005))
    ]
    cols = [
        "producers",
        "commit_interval_s",
        "messages",
        "msgs_per_s",
        "commits",
        "msgs_per_commit",
    ]
    print(" | ".join(f"{c:>17}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r[c]!s:>17}" for c in cols))
    out = Path(__file__).parent / "results" / "outbox.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {"machine": platform.platform(), "goal_msgs_per_s": 50_000, "runs": rows}, indent=2
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
