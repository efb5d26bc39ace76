"""Run one driver for a test: a real context, a real link manager, readings collected."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from gateway.driver import Clock, DeviceState, Driver, DriverContext
from gateway.events import Event, Reading, Readings
from gateway.health import Health
from gateway.logs import DeviceLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from gateway.links import LinkManager


class Running:
    """A driver's task, its context and everything it emitted so far."""

    def __init__(self, driver: Driver, links: LinkManager) -> None:
        self.driver = driver
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        log = DeviceLog(logging.getLogger("drivers.test"), {"device": driver.config.id})
        self.health = Health(log)
        self.ctx = DriverContext(
            driver.config.id, log, Clock(), self.health, DeviceState(), self.queue, links
        )
        self.readings: list[Reading] = []
        self.task: asyncio.Task[None] | None = None

    def drain(self) -> list[Reading]:
        while not self.queue.empty():
            event = self.queue.get_nowait()
            if isinstance(event, Readings):  # one poll's readings at once
                self.readings.extend(event.readings)
                continue
            assert isinstance(event, Reading)
            self.readings.append(event)
        return self.readings

    async def until(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `check()` holds, failing after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not check():
            self.drain()
            if self.task is not None and self.task.done():
                self.task.result()
            assert time.monotonic() < deadline, "condition not reached in time"
            await asyncio.sleep(0.02)
        self.drain()

    def values(self, metric: str) -> list[float]:
        return [r.value for r in self.drain() if r.metric == metric]


@contextlib.asynccontextmanager
async def running(*drivers: Driver, links: LinkManager) -> AsyncIterator[list[Running]]:
    """Run `drivers` until the block ends; then cancel them and close the links."""
    runs = [Running(d, links) for d in drivers]
    for run in runs:
        run.task = asyncio.create_task(run.driver.run(run.ctx), name=f"driver:{run.ctx.device_id}")
    try:
        yield runs
    finally:
        for run in runs:
            assert run.task is not None
            run.task.cancel()
        await asyncio.gather(*(r.task for r in runs if r.task), return_exceptions=True)
        await links.close()
