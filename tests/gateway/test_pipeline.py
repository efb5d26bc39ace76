"""The pipeline treats a poll's batch of readings exactly like the readings one by one."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.aggregate import Aggregator
from gateway.catalog import Catalog
from gateway.events import Event, Quality, Reading, Readings
from gateway.pipeline import Pipeline

T0 = 1_800_000_000.0  # a window boundary for 60-second windows


class _Collect:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def send(
        self, topic: str, body: dict[str, Any], cls: str, ts: float | None = None
    ) -> None:
        self.bodies.append(body)

    async def drain(self) -> None:
        return None


def _readings() -> list[Reading]:
    out = []
    for i in range(3):
        ts = T0 + 10 * i
        out += [
            Reading("m1", "voltage", 230.0 + i, "V", ts, ts),
            Reading("m1", "energy", 100.0 + i, "kWh", ts, ts, counter=True),
            Reading("m1", "current", float("nan"), "A", ts, ts, Quality.BAD),
        ]
    out.append(Reading("m1", "voltage", 240.0, "V", T0 + 60, T0 + 60))  # closes the window
    return out


async def _run(events: list[Event]) -> tuple[list[dict[str, Any]], list[Reading]]:
    sink = _Collect()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    pipeline = Pipeline(queue, sink, Catalog([], "EUR"), Aggregator(60.0, {}), wall=lambda: T0)
    seen: list[Reading] = []
    pipeline.subscribe(Reading, seen.append)
    for event in events:
        queue.put_nowait(event)
    await pipeline.flush()
    return sink.bodies, seen


async def test_a_batch_gives_the_same_windows_and_observations_as_single_readings() -> None:
    readings = _readings()
    single = await _run(list(readings))
    batched = await _run(
        [Readings(tuple(readings[i : i + 3])) for i in range(0, 9, 3)] + [readings[9]]
    )
    assert batched == single
    windows, seen = batched
    assert seen == readings  # observers see every reading, in order
    first = windows[0]
    assert first["metrics"]["voltage"]["mean"] == 231.0
    assert first["quality"]["bad"] == 3
    assert first["metrics"]["energy"]["delta"] == 2.0
