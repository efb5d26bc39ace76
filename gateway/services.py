"""Services: the daemon's optional components (inventory, pricing, inference, ...).

A service is built from the config when its section asks for it, sees the daemon through
a `ServiceContext`, and follows one life cycle: `open()` before devices start (IO
allowed), `run()` as a named core task (it may simply wait forever), `reconfigure()` on a
reload, `close()` at shutdown after the pipeline has been flushed. Like a core task, a
service whose `run()` raises is a bug: the daemon stops in order and exits non-zero.

To add one: subclass `Service`, write `build(ctx) -> Service | None` (None when the config
does not enable it), and register `build` in `gateway/service_registry.py`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gateway.sinks import BUSINESS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from gateway.catalog import Catalog
    from gateway.commands import CommandRouter
    from gateway.config import Config
    from gateway.config_store import ConfigStore, RunningConfig, Version
    from gateway.payloads import Stamper
    from gateway.pipeline import Pipeline
    from gateway.plugins import Registry
    from gateway.sinks import Sink
    from gateway.state import StateStore
    from gateway.supervisor import Supervisor


@dataclass(slots=True)
class ServiceContext:
    """What a service may use of the daemon.

    - `sink.send(topic_suffix, body, "business"|"telemetry", ts)`: publish to the cloud
      (through the outbox) or the console; stamping is done for you.
    - `router`: register command handlers (`router.register("prices", handler)`);
      None when the config has no `mqtt` section (no commands then).
    - `pipeline.subscribe(EventClass, callback)`: see every event of a kind (sync callback,
      called on the hot path: keep it cheap).
    - `states.get(name)`: a persisted key-value `DeviceState` (saved periodically).
    - `supervisor.runners[device_id]`: devices and their health; `device_write(id, cmd)`
      for actuators.
    - `status()`: the daemon's full status dict.
    - `stamper`: adds `id`/`ts`/`gw` to payloads; set `stamper.clock_synced` when the
      system clock is known not to be synchronised yet.
    - `ready`: set once the config is loaded, the outbox open and the devices started.
    - `core_alive()`: True while the event loop's core tasks (pipeline, uplink, ...) run.
    - `services`: every service by name (filled before any `open()`), to find a peer
      such as `services["inventory"]`.
    - `host`: the daemon's running config and `apply_config()` (the `fleet` service);
      None in tests that build services without a daemon.
    - `final_ack(name, body)`: the final ack of a command finished after a restart.
    """

    config: Config
    sink: Sink
    router: CommandRouter | None
    pipeline: Pipeline
    states: StateStore
    supervisor: Supervisor
    catalog: Callable[[], Catalog]
    status: Callable[[], dict[str, Any]]
    stamper: Stamper
    ready: asyncio.Event
    core_alive: Callable[[], bool]
    services: dict[str, Service]
    host: ConfigHost | None = None

    async def final_ack(self, name: str, body: dict[str, Any]) -> None:
        """Send the final ack of command `name` that ended outside its handler (a restart
        cut it off): through the router, which remembers it so a re-send gets it again;
        straight to the sink when there is no router."""
        if self.router is not None:
            await self.router.report(name, body)
        else:
            await self.sink.send(f"cmd/{name}/ack", body, BUSINESS)


class ConfigHost(Protocol):
    """What the daemon offers for remote configuration (`gateway.fleet`)."""

    registry: Registry
    config_path: Path | None
    config_store: ConfigStore | None
    running: RunningConfig | None
    interrupted: list[Version]

    async def apply_config(
        self, new: Config, text: str, origin: str, version: int | None
    ) -> dict[str, Any]:
        """Apply `new` through the SIGHUP path; returns started/stopped/restarted."""
        ...


class Service(ABC):
    """Base class of the daemon's optional components."""

    name: str = "service"

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Before devices start: open files, restore state, register handlers."""

    @abstractmethod
    async def run(self) -> None:
        """The service's task; loops until cancelled."""

    async def reconfigure(self, config: Config) -> None:  # noqa: B027 - optional hook
        """A reload changed the config: adapt in place."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """At shutdown, after the pipeline was flushed: save, close."""

    def stats(self) -> dict[str, Any]:
        """A section for status and metrics (keyed by `name`)."""
        return {}


async def idle() -> None:
    """For services with no periodic work: wait until cancelled."""
    await asyncio.Event().wait()
