"""A pricing service wired to a real command router, supervisor and label simulator.

`LabelsEnv` is the daemon's pricing path without MQTT: commands go to the real
`CommandRouter`, acks are captured, the label driver runs under the real supervisor against
its simulator on 127.0.0.1. `restart()` stops and rebuilds the service, router and devices
on the same state directory, as a daemon restart would.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from typing import TYPE_CHECKING, Any, Self

from gateway.catalog import Catalog
from gateway.commands import CommandRouter
from gateway.config import parse_config
from gateway.payloads import Stamper
from gateway.plugins import discover
from gateway.pricing import PricingService
from gateway.services import ServiceContext
from gateway.state import StateStore
from gateway.supervisor import RestartPolicy, Supervisor

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

    from gateway.config import Config
    from gateway.events import Event

REGISTRY = discover()


def prices_result_errors(result: dict[str, Any]) -> list[str]:
    """Where a `prices` ack's result breaks docs/asyncapi.yaml `PricesResult`."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    from tests.contract_schema import document

    base = "urn:storegw:asyncapi"
    registry: Registry[Any] = Registry().with_resource(
        base, Resource.from_contents(document(), default_specification=DRAFT202012)
    )
    schema = {"$ref": base + "#/components/schemas/PricesResult"}
    validator = Draft202012Validator(schema, registry=registry)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(result)]


LABELS = (
    "labels: {pause: 0s, confirm_timeout: 3s, retry: {initial: 100ms, max: 300ms, attempts: 20}}"
)


def env_config(tmp_path: Path, catalog: str, devices: str, labels: str = LABELS) -> Config:
    """A config with a state dir under tmp_path, the given catalog, devices and labels."""
    text = f"gateway: {{store: s, id: g, state_dir: {tmp_path / 'state'}}}\n{labels}\n"
    text += textwrap.dedent(catalog) + textwrap.dedent(devices)
    return parse_config(text, "test.yaml", REGISTRY, base_dir=tmp_path)


class CaptureSink:
    """Records what the service publishes (the resumed acks)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.changed = asyncio.Event()

    async def send(
        self, topic: str, body: dict[str, Any], cls: str, ts: float | None = None
    ) -> None:
        self.sent.append((topic, body))
        self.changed.set()

    async def drain(self) -> None:
        return None


class LabelsEnv:
    """See the module docstring."""

    def __init__(self, tmp_path: Path, config: Config) -> None:
        self.tmp_path = tmp_path
        self.config = config
        self.acks: list[dict[str, Any]] = []
        self.sink = CaptureSink()
        self._changed = asyncio.Event()
        self.service: PricingService | None = None
        self._run: asyncio.Task[None] | None = None

    async def _send_ack(self, _topic: str, body: dict[str, Any]) -> None:
        self.acks.append(body)
        self._changed.set()

    async def start(self) -> None:
        """Open the state, start the devices, the router and the pricing service."""
        self.states = StateStore(self.tmp_path / "state" / "state.sqlite")
        await asyncio.to_thread(self.states.open)
        queue: asyncio.Queue[Event] = asyncio.Queue(100)
        self.supervisor = Supervisor(queue, self.states, RestartPolicy(initial=0.1, max=0.5))
        self.router = CommandRouter(
            send_ack=self._send_ack,
            store_path=self.tmp_path / "state" / "commands.sqlite",
            max_size=1_000_000,
            remember=3600,
            public_keys=[],
            require_signature=False,
        )
        await self.router.open()
        catalog = Catalog.from_config(self.config.catalog)
        ctx = ServiceContext(
            config=self.config,
            sink=self.sink,
            router=self.router,
            pipeline=None,  # type: ignore[arg-type]  # pricing does not subscribe to events
            states=self.states,
            supervisor=self.supervisor,
            catalog=lambda: catalog,
            status=dict,
            stamper=Stamper("g"),
            ready=asyncio.Event(),
            core_alive=lambda: True,
            services={},
        )
        self.service = PricingService(ctx)
        await self.service.open()
        devices = [(d, REGISTRY.drivers[d.driver]) for d in self.config.devices]
        await self.supervisor.apply(devices)
        self._run = asyncio.create_task(self.service.run(), name="service:pricing")

    async def stop(self) -> None:
        """Shut down in the daemon's order: devices, service, router, state."""
        await self.supervisor.stop_all()
        if self._run is not None:
            self._run.cancel()
            await asyncio.gather(self._run, return_exceptions=True)
        if self.service is not None:
            await self.service.close()
        await self.router.close()
        self.states.close()

    async def restart(self) -> None:
        """A daemon restart on the same state directory."""
        await self.stop()
        self.acks.clear()
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def send(self, cmd_id: str, items: list[dict[str, Any]]) -> None:
        """Publish a `prices` command as the cloud would."""
        payload = json.dumps({"id": cmd_id, "params": {"items": items}}).encode()
        await self.router.dispatch("prices", payload)

    async def ack(
        self, cmd_id: str, outcome: str = "done", timeout: float = 15.0
    ) -> dict[str, Any]:
        """The first ack of `cmd_id` with `outcome`, waiting for it."""
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                for body in self.acks:
                    if body["cmd_id"] == cmd_id and body["outcome"] == outcome:
                        return body
                await self._changed.wait()

    async def published(self, topic: str, timeout: float = 15.0) -> dict[str, Any]:
        """The first message the service itself published on `topic`."""
        async with asyncio.timeout(timeout):
            while True:
                self.sink.changed.clear()
                for t, body in self.sink.sent:
                    if t == topic:
                        return body
                await self.sink.changed.wait()


async def wait_until(pred: Any, event: asyncio.Event, timeout: float = 10.0) -> None:
    """Wait until `pred()` holds, re-checking whenever `event` is set."""
    async with asyncio.timeout(timeout):
        while not pred():
            event.clear()
            await event.wait()


async def eventually(pred: Any, timeout: float = 10.0) -> None:
    """Wait until `pred()` holds, for state no event announces (checked every 20 ms)."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.02)
