"""A driver on the bench: a real DriverContext around a queue, the driver as a named task,
and waits on its events with deadlines (shared by the scale and POS driver tests)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.driver import Clock, DeviceState, DriverContext
from gateway.health import Health
from gateway.logs import DeviceLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from gateway.driver import Driver
    from gateway.events import Event

E = TypeVar("E")


class Bench:
    """One device under test: its context, its queue of events, and its task."""

    def __init__(self, device_id: str = "dev-1", state: dict[str, Any] | None = None) -> None:
        log = DeviceLog(logging.getLogger("tests.drivers"), {"device": device_id, "driver": "t"})
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=1000)
        self.health = Health(log)
        self.ctx = DriverContext(
            device_id, log, Clock(), self.health, DeviceState(state), self.queue
        )
        self.task: asyncio.Task[None] | None = None

    async def next(self, kind: type[E], timeout: float = 5.0) -> E:
        """The next event of class `kind` (others are dropped); fails after `timeout`."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.queue.get()
                if isinstance(event, kind):
                    return event

    async def until(
        self, kind: type[E], check: Callable[[E], bool], timeout: float = 5.0
    ) -> list[E]:
        """Events of `kind` up to and including the first for which `check` holds."""
        seen: list[E] = []
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next(kind, timeout)
                seen.append(event)
                if check(event):
                    return seen

    async def prime(
        self, write: Callable[[], Awaitable[None]], kind: type[E], timeout: float = 5.0
    ) -> E:
        """Repeat `write` until the driver emits a `kind`: the port is open and read.

        pyserial drops what was buffered when it opens a port, so a one-way stream (an
        indicator, a till) is only heard from the moment the driver has opened it; a real
        indicator repeats its frames for the same reason.
        """
        async with asyncio.timeout(timeout):
            while True:
                await write()
                with contextlib.suppress(TimeoutError):
                    return await self.next(kind, 0.05)

    async def ended(self, timeout: float = 5.0) -> BaseException | None:
        """Wait for the driver's task to end; its exception (None if it returned)."""
        assert self.task is not None
        async with asyncio.timeout(timeout):
            with contextlib.suppress(Exception):
                await asyncio.shield(self.task)
        return self.task.exception()


@contextlib.asynccontextmanager
async def running(driver: Driver, bench: Bench) -> AsyncIterator[Bench]:
    """Run `driver.run(bench.ctx)` as a task for the block; cancel and await it afterwards."""
    bench.task = asyncio.create_task(driver.run(bench.ctx), name="driver:under-test")
    try:
        yield bench
    finally:
        bench.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await bench.task
