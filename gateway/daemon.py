"""The daemon: wires config, devices, pipeline, outbox, uplink and commands together.

Core services (pipeline, window timer, uplink, state saver, metrics, control socket) run
as named tasks; one that fails is a bug, so the daemon stops in order and exits non-zero
(systemd restarts it). Devices run under the supervisor, never as core tasks.

Shutdown (SIGTERM/SIGINT) follows Telegraf's order, inside `gateway.shutdown_timeout`:
stop the devices, drain the pipeline and close the open windows, commit the outbox, let
the uplink finish in-flight acknowledgements, disconnect. SIGHUP re-reads the config: an
invalid file is logged and ignored; a valid one restarts only the devices that changed
(and the uplink when `mqtt` changed); everything else is reconfigured in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from gateway import __version__
from gateway.aggregate import Aggregator, DeviceInfo
from gateway.catalog import Catalog
from gateway.cloud import Cloud
from gateway.config import ConfigError, parse_config
from gateway.config_store import RunningConfig, sha256_text, start_config
from gateway.control import ControlServer, socket_path
from gateway.links import LinkManager
from gateway.payloads import Stamper, encode
from gateway.pipeline import Pipeline
from gateway.service_registry import FACTORIES
from gateway.services import Service, ServiceContext
from gateway.sinks import TELEMETRY, ConsoleSink, Sink
from gateway.state import StateStore
from gateway.supervisor import RestartPolicy, Supervisor

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from pathlib import Path

    from gateway.config import Config
    from gateway.config_store import ConfigStore, Version
    from gateway.driver import Driver, DriverConfig
    from gateway.events import Event
    from gateway.plugins import Registry

log = logging.getLogger(__name__)

STATE_SAVE_INTERVAL = 30.0


def _policy(config: Config) -> RestartPolicy:
    rb = config.gateway.restart_backoff
    return RestartPolicy(initial=rb.initial, max=rb.max, reset_after=rb.reset_after)


def _device_infos(config: Config, registry: Registry) -> dict[str, DeviceInfo]:
    """Window per device: `aggregation.device_windows`, else the driver's `default_window`
    (meters: 15 min, the billing interval), else `aggregation.window`."""
    windows = config.aggregation.device_windows
    infos = {}
    for d in config.devices:
        cls = registry.drivers.get(d.driver)
        default = getattr(cls, "default_window", None) or config.aggregation.window
        infos[d.id] = DeviceInfo(d.driver, d.zone, windows.get(d.id, float(default)))
    return infos


class Daemon:
    """One running gateway."""

    def __init__(
        self,
        config: Config,
        registry: Registry,
        *,
        config_path: Path | None = None,
        sink: Sink | None = None,
    ) -> None:
        self.registry = registry
        self.config_path = config_path
        # issue 11: start from the confirmed stored version (gateway/config_store.py).
        self.running: RunningConfig | None = None
        self.config_store: ConfigStore | None = None
        self.interrupted: list[Version] = []
        if config_path is not None:
            config, self.running, self.config_store, self.interrupted = start_config(
                config, config_path, registry
            )
        self.config = config
        self.started = time.time()
        self.stamper = Stamper(config.gateway.id)
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=config.gateway.queue_size)
        state_dir = config.gateway.state_dir
        self.states = StateStore(state_dir / "state.sqlite")
        self.links = LinkManager(config.links)
        self.supervisor = Supervisor(self.queue, self.states, _policy(config), links=self.links)
        self.cloud: Cloud | None = None
        if config.mqtt is not None:
            self.cloud = Cloud(config, self.stamper, birth=self.birth, summary=self.summary)
        self.sink: Sink = sink or (
            self.cloud.sink if self.cloud else ConsoleSink(self.stamper, self.prefix)
        )
        self.aggregator = Aggregator(config.aggregation.window, _device_infos(config, registry))
        self.pipeline = Pipeline(
            self.queue, self.sink, Catalog.from_config(config.catalog), self.aggregator
        )
        self.control = ControlServer(socket_path(config), self.status)
        self.services: list[Service] = []
        self.ready = asyncio.Event()
        service_ctx = ServiceContext(
            config=config,
            sink=self.sink,
            router=self.cloud.router if self.cloud else None,
            pipeline=self.pipeline,
            states=self.states,
            supervisor=self.supervisor,
            catalog=lambda: self.pipeline.catalog,
            status=self.status,
            stamper=self.stamper,
            ready=self.ready,
            core_alive=self.core_alive,
            services={},
            host=self,
        )
        for factory in FACTORIES:
            service = factory(service_ctx)
            if service is not None:
                self.services.append(service)
                service_ctx.services[service.name] = service
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._tasks_changed = asyncio.Event()
        self.reloads = 0
        self.exit_code = 0

    @property
    def prefix(self) -> str:
        """The MQTT topic prefix (also used by the console sink)."""
        if self.config.mqtt is not None:
            return str(self.config.mqtt.prefix)
        return f"storegw/{self.config.gateway.store}/{self.config.gateway.id}"

    # -- life cycle -------------------------------------------------------------------

    def request_stop(self) -> None:
        """Begin an orderly shutdown (signal handlers call this)."""
        self._stop.set()

    def request_reload(self) -> None:
        """Re-read the config file soon (SIGHUP)."""
        self._reload.set()

    def _devices(self, config: Config) -> list[tuple[DriverConfig, type[Driver]]]:
        return [(d, self.registry.drivers[d.driver]) for d in config.devices]

    def _spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks[name] = asyncio.create_task(coro, name=name)

    async def _open(self) -> None:
        self.config.gateway.state_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.states.open)
        self.aggregator.restore_baselines(self.states.get("aggregator").get("counters", {}))
        if self.cloud is not None:
            await self.cloud.open()
        for service in self.services:
            await service.open()
        await self.control.start()

    async def run(self) -> int:
        """Run until stopped; returns the process exit code."""
        loop = asyncio.get_running_loop()
        for sig, handler in (
            (signal.SIGTERM, self.request_stop),
            (signal.SIGINT, self.request_stop),
            (signal.SIGHUP, self.request_reload),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, handler)
        try:
            await self._open()
            self._spawn("pipeline", self.pipeline.run())
            self._spawn("pipeline:timer", self.pipeline.run_timer())
            self._spawn("state:saver", self._save_states_forever())
            self._spawn("reloader", self._reload_forever())
            for service in self.services:
                self._spawn(f"service:{service.name}", service.run())
            if self.cloud is not None:
                self._tasks["uplink"] = self.cloud.start_uplink()
                self._spawn("metrics", self._metrics_forever())
            await self.supervisor.apply(self._devices(self.config))
            self.ready.set()
            log.info(
                "storegw %s running: store %s, gateway %s, %d devices",
                __version__,
                self.config.gateway.store,
                self.config.gateway.id,
                len(self.config.devices),
            )
            await self._wait()
        finally:
            await self._shutdown()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
        return self.exit_code

    async def _wait(self) -> None:
        """Until a stop is requested or a core service dies (a bug: exit non-zero)."""
        stopper = asyncio.create_task(self._stop.wait(), name="stop-waiter")
        try:
            while not self._stop.is_set():
                self._tasks_changed.clear()
                changed = asyncio.create_task(self._tasks_changed.wait(), name="tasks-changed")
                try:
                    await asyncio.wait(
                        [stopper, changed, *self._tasks.values()],
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    changed.cancel()
                dead = [t for t in self._tasks.values() if t.done()]
                for task in dead:
                    exc = task.exception() if not task.cancelled() else None
                    log.critical(
                        "Core service %s stopped unexpectedly: %r; shutting down",
                        task.get_name(),
                        exc,
                        exc_info=exc,
                    )
                if dead:
                    self.exit_code = 1
                    return
        finally:
            stopper.cancel()

    async def _shutdown(self) -> None:
        timeout = self.config.gateway.shutdown_timeout
        log.info("Stopping (deadline %.0fs)", timeout)
        try:
            async with asyncio.timeout(timeout):
                await self.supervisor.stop_all()
                await self.links.close()
                await self._cancel("pipeline", "pipeline:timer")
                await self.pipeline.flush()
                await self._cancel(*(f"service:{s.name}" for s in self.services))
                for service in self.services:
                    await service.close()
                await self.sink.drain()
                await self._save_states()
                await self._cancel("metrics", "uplink")
                if self.cloud is not None:
                    await self.cloud.close()
        except TimeoutError:
            log.error("Shutdown took longer than %.0fs; stopping anyway", timeout)
            self.exit_code = self.exit_code or 1
        await self._cancel(*self._tasks)
        await self.control.close()
        self.states.close()
        log.info("Stopped")

    async def _cancel(self, *names: str) -> None:
        tasks = [self._tasks.pop(n) for n in names if n in self._tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def core_alive(self) -> bool:
        """Whether every core task is still running (the systemd watchdog asks this)."""
        return bool(self._tasks) and not any(t.done() for t in self._tasks.values())

    # -- periodic work ------------------------------------------------------------------

    async def _save_states(self) -> None:
        self.states.get("aggregator")["counters"] = self.aggregator.counter_baselines()
        await self.states.save()

    async def _metrics_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.status.metrics_interval)
            status = self.status()
            del status["gateway"]["config_file"]
            await self.sink.send("metrics", status, TELEMETRY)

    async def _save_states_forever(self) -> None:
        while True:
            await asyncio.sleep(STATE_SAVE_INTERVAL)
            await self._save_states()

    # -- reload -------------------------------------------------------------------------

    async def _reload_forever(self) -> None:
        while True:
            await self._reload.wait()
            self._reload.clear()
            await self.reload()

    async def reload(self) -> bool:
        """Re-read the config file; apply it if valid. Returns whether it was applied."""
        if self.config_path is None:
            log.warning("Reload requested, but the daemon was not started from a file")
            return False
        log.info("Reloading %s", self.config_path)
        path = self.config_path
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
            base = path.parent.absolute()
            new = parse_config(text, str(path), self.registry, base_dir=base)
        except OSError as exc:
            log.error("Reload refused: cannot read %s: %s", path, exc.strerror or exc)
            return False
        except ConfigError as err:
            for issue in err.issues:
                log.error("Reload refused: %s", issue)
            log.error("Keeping the running config (%d errors in the new file)", len(err.issues))
            return False
        # A hand edit + SIGHUP is recorded like a remote change (docs/fleet.md).
        store = self.config_store
        version = await asyncio.to_thread(store.record_file, text) if store else None
        await self.apply_config(new, text, "file", version.n if version else None)
        return True

    @property
    def config_hash(self) -> str | None:
        """SHA-256 of the running config's text (the cloud sees every gateway's version)."""
        return self.running.sha256 if self.running is not None else None

    async def apply_config(
        self, new: Config, text: str, origin: str, version: int | None
    ) -> dict[str, Any]:
        """Apply `new` (whose source is `text`) as SIGHUP does; re-announce the new hash."""
        self.running = RunningConfig(text, sha256_text(text), origin, time.time(), version)
        changes = await self.apply(new)
        if self.cloud is not None and not changes["uplink_restarted"]:
            # The retained birth carries config_hash; an unchanged uplink would not resend it.
            body = encode(self.stamper.stamp(self.birth()))
            await self.cloud.uplink.publish_now("status", body, retain=True)
        return changes

    async def apply(self, new: Config) -> dict[str, Any]:
        """Apply a validated config: restart only what changed; returns what it did."""
        old, self.config = self.config, new
        self.reloads += 1
        self.links.configure(new.links)
        started, stopped, restarted = await self.supervisor.apply(self._devices(new), _policy(new))
        self.pipeline.configure(
            Catalog.from_config(new.catalog),
            new.aggregation.window,
            _device_infos(new, self.registry),
        )
        self.stamper.gw = new.gateway.id
        for service in self.services:
            service.ctx.config = new
            await service.reconfigure(new)
        if new.logging.level != old.logging.level:
            logging.getLogger().setLevel(new.logging.level.upper())
        uplink_restarted = self.cloud is not None and new.mqtt != old.mqtt
        if self.cloud is not None and new.mqtt != old.mqtt and new.mqtt is not None:
            self._tasks.pop("uplink", None)  # its cancellation is not a core failure
            self._tasks_changed.set()
            self._tasks["uplink"] = await self.cloud.restart_uplink(new)
            self._tasks_changed.set()
            log.info("Uplink restarted with the new mqtt settings")
        if (new.mqtt is None) != (old.mqtt is None) or new.outbox != old.outbox:
            log.warning("Changes to the outbox or adding/removing mqtt take effect after a restart")
        log.info(
            "Config applied: %d started, %d stopped, %d restarted, %d unchanged",
            len(started),
            len(stopped),
            len(restarted),
            len(new.devices) - len(started) - len(restarted),
        )
        return {
            "started": started,
            "stopped": stopped,
            "restarted": restarted,
            "uplink_restarted": uplink_restarted,
        }

    # -- status -------------------------------------------------------------------------

    def birth(self) -> dict[str, Any]:
        """The retained `online` status published after every connect."""
        body: dict[str, Any] = {
            "state": "online",
            "version": __version__,
            "drivers": sorted({d.driver for d in self.config.devices}),
            "devices": len(self.config.devices),
        }
        if self.config_hash is not None:
            body["config_hash"] = self.config_hash
        return body

    def summary(self) -> dict[str, Any]:
        """A short health summary (the `ping` command's answer)."""
        out: dict[str, Any] = {
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 1),
            "devices": self.supervisor.counts(),
            "queue_depth": self.queue.qsize(),
        }
        if self.cloud is not None:
            out["outbox_depth"] = self.cloud.outbox.stats().get("depth")
        return out

    def status(self) -> dict[str, Any]:
        """Everything `storegw status`, `ping` and `P/metrics` report."""
        cloud = self.cloud.stats() if self.cloud is not None else {"uplink": None}
        return {
            **cloud,
            **{s.name: s.stats() for s in self.services},
            "gateway": {
                "store": self.config.gateway.store,
                "id": self.config.gateway.id,
                "version": __version__,
                "pid": os.getpid(),
                "uptime_s": round(time.time() - self.started, 1),
                "clock_synced": self.stamper.clock_synced,
                "config_file": str(self.config_path) if self.config_path else None,
                "reloads": self.reloads,
            },
            "pipeline": self.pipeline.stats(),
            "links": self.links.stats(),
            "devices": self.supervisor.snapshot(),
        }
