"""The driver interface: the one module a driver author must read.

A driver speaks one device family's wire protocol and turns what it hears into typed
events (`gateway.events`). It never touches MQTT, SQLite or another driver: the daemon
owns those. A driver is a class with three class attributes and one coroutine::

    from typing import Literal
    from gateway import Driver, DriverConfig, DriverContext, Reading, duration

    class ThermoConfig(DriverConfig):
        driver: Literal["thermo"] = "thermo"
        host: str
        interval: duration(min="100ms") = 5.0          # seconds; written '5s' in YAML

    class Thermo(Driver):
        name = "thermo"                                 # = entry-point name = folder name
        summary = "Network thermometer (ACME TX-1)"     # one line for `storegw drivers`
        Config = ThermoConfig

        async def run(self, ctx: DriverContext) -> None:
            cfg = self.config                           # a validated, frozen ThermoConfig
            while True:                                 # until cancelled
                async with asyncio.timeout(2):          # every wait is bounded
                    celsius = await read_thermometer(cfg.host)
                ts, mono = ctx.clock.now()
                await ctx.emit(Reading(ctx.device_id, "temperature", celsius, "C", ts, mono))
                ctx.health.ok()                         # alive and well
                await asyncio.sleep(cfg.interval)

and one line in the package's `pyproject.toml`::

    [project.entry-points."storegw.drivers"]
    thermo = "thermo_pkg:Thermo"

Rules (the supervisor relies on them):
- `__init__` stores and derives from the config; it does no IO.
- `run()` loops until cancelled and raises when something is wrong: the supervisor logs
  it once, marks the device failed and runs it again after a growing delay. It never
  swallows `asyncio.CancelledError` and bounds every wait with `asyncio.timeout()`.
- `ctx.health.ok()` after each good poll or read; `ctx.health.degraded(reason)` when the
  device misbehaves but the driver goes on. A driver that calls neither for its
  `hang_timeout` is considered hung, cancelled and restarted.
- `await ctx.emit(event)` waits when the pipeline is full: back-pressure, not loss. A poll
  that yields many readings hands them over at once with `await ctx.emit_readings(list)`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from gateway.config.types import duration
from gateway.events import Readings

if TYPE_CHECKING:
    import asyncio
    import logging
    from collections.abc import Iterator, Sequence

    from gateway.events import Event, Reading
    from gateway.health import Health
    from gateway.links import Link, LinkManager

DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class DriverConfig(BaseModel):
    """Fields every device entry has; a driver's `Config` subclasses it.

    A subclass must narrow `driver` to `Literal["<name>"]` and describe every field
    (`Field(description=...)`): the description becomes JSON Schema text for editors
    and is printed by `storegw drivers`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        pattern=DEVICE_ID_PATTERN,
        description="Unique device id: letters, digits, '_', '.', '-' (1-64 characters).",
    )
    driver: str = Field(description="Which driver talks to this device (`storegw drivers`).")
    zone: str | None = Field(
        default=None,
        description="Shelf, zone or meter channel this device belongs to in the store.",
    )
    hang_timeout: duration(min="1s", max="1d") = Field(  # type: ignore[valid-type]
        default=120.0,
        description="A driver that reports no health for this long is restarted.",
    )


class Clock:
    """Wall and monotonic time, read together; injected so tests can control time."""

    __slots__ = ()

    def now(self) -> tuple[float, float]:
        """(UTC seconds since the epoch, monotonic seconds)."""
        return time.time(), time.monotonic()


class DeviceState:
    """A small persisted key-value store for one device (last counter value, cursor, ...).

    Reads and writes are in memory; the daemon saves changed states periodically and at
    shutdown. Values must be JSON-serialisable.
    """

    __slots__ = ("_data", "dirty")

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data or {})
        self.dirty = False

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or `default`."""
        return self._data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if self._data.get(key, _MISSING) != value:
            self._data[key] = value
            self.dirty = True

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def as_dict(self) -> dict[str, Any]:
        """A shallow copy for saving."""
        return dict(self._data)


_MISSING = object()


class DriverContext:
    """What a running driver is given: its id, logger, clock, health, state and `emit`."""

    __slots__ = ("_links", "_queue", "clock", "device_id", "health", "log", "state")

    def __init__(
        self,
        device_id: str,
        log: logging.LoggerAdapter[logging.Logger],
        clock: Clock,
        health: Health,
        state: DeviceState,
        queue: asyncio.Queue[Event],
        links: LinkManager | None = None,
    ) -> None:
        self.device_id = device_id
        self.log = log
        self.clock = clock
        self.health = health
        self.state = state
        self._queue = queue
        self._links = links

    def link(self, name: str) -> Link:
        """The shared link `name` (a `links:` id, or `tcp://HOST:PORT` for a device's own
        endpoint); the daemon owns it, so a driver never opens or closes it."""
        if self._links is None:
            raise LookupError("this context has no link manager (links need the daemon)")
        return self._links.link(name)

    async def emit(self, event: Event) -> None:
        """Hand an event to the pipeline; waits while the pipeline is full."""
        queue = self._queue
        if queue.full():
            await queue.put(event)
        else:
            queue.put_nowait(event)

    async def emit_readings(self, readings: Sequence[Reading]) -> None:
        """Hand the readings of one poll to the pipeline as one event (`Readings`): cheaper
        than one `emit` each. Nothing is emitted for an empty sequence."""
        if len(readings) == 1:
            await self.emit(readings[0])
        elif readings:
            await self.emit(Readings(tuple(readings)))


class Driver(ABC):
    """Base class of every driver; see the module docstring for the contract."""

    name: ClassVar[str]
    summary: ClassVar[str]
    Config: ClassVar[type[DriverConfig]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [a for a in ("name", "summary", "Config") if not hasattr(cls, a)]
        if missing:
            raise TypeError(f"driver class {cls.__qualname__} lacks {', '.join(missing)}")
        if not (isinstance(cls.Config, type) and issubclass(cls.Config, DriverConfig)):
            raise TypeError(f"{cls.__qualname__}.Config must subclass DriverConfig")

    def __init__(self, config: DriverConfig) -> None:
        self.config = config

    @abstractmethod
    async def run(self, ctx: DriverContext) -> None:
        """The device's one task: loop until cancelled; raise when something is wrong."""
