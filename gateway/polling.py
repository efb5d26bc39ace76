"""When a polled device is read: a fixed cadence, spread on a shared bus, slower while dead.

Ticks fall every `interval` on the monotonic clock, shifted by the device's `offset` and
a random `jitter` so that devices on one RS-485 bus do not all queue at the same instant.
A poll still running when its next tick comes makes that tick skipped and counted, never
queued (queued polls pile up on a slow bus — a common complaint about other gateways).
A device that failed `dead_after` polls in a row is "dead": its interval doubles after
each further failure up to `dead_max`, so it costs the bus its timeout ever more rarely,
and one good poll brings it back to its own cadence.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import TYPE_CHECKING

from gateway.events import Quality, Reading

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from gateway.driver import DriverContext

FAILED_POLL_METRIC = "poll"


class PollClock:
    """The tick schedule of one device; `wait()` before each poll, `done(ok)` after."""

    __slots__ = (
        "_mono",
        "_next",
        "_polled",
        "_rng",
        "dead_after",
        "dead_max",
        "failures",
        "interval",
        "jitter",
        "skipped",
    )

    def __init__(
        self,
        interval: float,
        offset: float = 0.0,
        jitter: float = 0.0,
        *,
        dead_after: int = 3,
        dead_max: float = 60.0,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.jitter = jitter
        self.dead_after = dead_after
        self.dead_max = max(dead_max, interval)
        self.failures = 0
        self.skipped = 0
        self._rng = rng or random.Random()
        self._mono = monotonic
        # The first poll comes `offset` after start: devices on one bus start together
        # (the daemon starts them), so their offsets keep them apart from then on.
        self._next = monotonic() + offset % interval
        self._polled = False  # ticks can only be missed by a poll that overran

    @property
    def dead(self) -> bool:
        """Whether the device failed `dead_after` polls in a row."""
        return self.failures >= self.dead_after

    def delay(self) -> float:
        """Seconds until the next poll; ticks already passed are skipped and counted."""
        now = self._mono()
        if self._polled and now > self._next:
            missed = math.floor((now - self._next) / self.interval) + 1
            self.skipped += missed
            self._next += missed * self.interval
        jitter = self._rng.uniform(0.0, self.jitter) if self.jitter else 0.0
        return max(0.0, self._next - now + jitter)

    async def wait(self) -> None:
        """Sleep until the next tick."""
        await asyncio.sleep(self.delay())

    def done(self, ok: bool) -> None:
        """Record the poll that started at the current tick and schedule the next."""
        self._polled = True
        self.failures = 0 if ok else self.failures + 1
        step = self.interval
        if self.dead:
            # Deliberate: the ticks stepped over while dead are not "skipped".
            doublings = min(self.failures - self.dead_after + 1, 30)
            step = min(self.dead_max, self.interval * 2**doublings)
        self._next += step


async def poll_forever(
    ctx: DriverContext, clock: PollClock, poll: Callable[[], Awaitable[str | None]]
) -> None:
    """Run `poll` on `clock`'s ticks until cancelled; it returns None or why it failed.

    Counts `polls`, `failed_polls` and `skipped_polls` in the device's health; a failed
    poll is also one bad reading (metric `poll`), so the window's quality flags show it.
    Logs once when the device goes bad or dead, once when it recovers (via health).
    """
    reported = 0
    while True:
        await clock.wait()
        if clock.skipped > reported:
            ctx.health.count("skipped_polls", clock.skipped - reported)
            reported = clock.skipped
        was_dead = clock.dead
        failure = await poll()
        ctx.health.count("polls")
        clock.done(failure is None)
        if failure is None:
            ctx.health.ok()
            continue
        ctx.health.count("failed_polls")
        ts, mono = ctx.clock.now()
        await ctx.emit(
            Reading(ctx.device_id, FAILED_POLL_METRIC, math.nan, "", ts, mono, Quality.BAD)
        )
        ctx.health.degraded(failure)
        if clock.dead and not was_dead:
            ctx.log.warning(
                "%d polls failed in a row; polling it less often (at most every %gs) until "
                "it answers",
                clock.failures,
                clock.dead_max,
            )
