"""Fleet operations (issue 11): remote `config`, `diag` and `device` commands.

`config apply` validates like `storegw check`, refuses inline secrets and a stale base
hash, stores the text as a *tentative* version (gateway/config_store.py), applies it through
the SIGHUP path (only changed devices restart, the uplink only when `mqtt` changed), then
watches for `fleet.probation`: the uplink must be connected and the core tasks alive. If
not, the previous config is applied again and the ack is `rejected: rolled_back` with what
failed; only then is the version confirmed and the ack `done`. A crash during probation
leaves the version tentative, so the next start comes back on the confirmed one, and this
service reports the interrupted command as `rolled_back` once the daemon runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import yaml

from gateway.config import ConfigError, parse_config
from gateway.config.errors import dotted
from gateway.config.secrets import MASK
from gateway.config_store import VersionState, write_atomic
from gateway.diag import LogRing, parts, report, secret_values
from gateway.health import HealthState
from gateway.payloads import rfc3339
from gateway.services import ConfigHost, Service, ServiceContext, idle
from gateway.sinks import BUSINESS

if TYPE_CHECKING:
    from gateway.commands import Command
    from gateway.config import Config
    from gateway.config_store import ConfigStore

from gateway.commands import CommandRejected

log = logging.getLogger(__name__)

SETTLE = 5.0  # how long a device ack waits for the device to leave `starting`
POLL = 0.1


def mask_yaml(text: str, paths: list[str]) -> str:
    """`text` with the scalar at each dotted path (inline secrets) replaced by the mask."""
    wanted, spans = set(paths), []

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value, (*path, str(key.value)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))
        elif dotted(path) in wanted:
            spans.append((node.start_mark.index, node.end_mark.index))

    root = yaml.compose(text, Loader=yaml.SafeLoader) if wanted else None
    if root is not None:
        walk(root, ())
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + f"'{MASK}'" + text[end:]
    return text


class Fleet(Service):
    """The `config`, `diag` and `device` commands."""

    name = "fleet"

    def __init__(self, ctx: ServiceContext, host: ConfigHost, store: ConfigStore) -> None:
        super().__init__(ctx)
        self.host = host
        self.store = store
        self.ring = LogRing(ctx.config.fleet.diag_log_lines)
        self._changing = asyncio.Lock()
        self._devices_file = store.dir / "devices.json"
        self.counts = {"applied": 0, "rolled_back": 0, "refused": 0}

    async def open(self) -> None:
        """Register the commands, restore disabled devices, start keeping log lines."""
        router = self.ctx.router
        assert router is not None
        router.register("config", self._config, actions=("get", "apply", "rollback"))
        router.register("diag", self._diag)
        router.register("device", self._device, actions=("restart", "disable", "enable"))
        if self._devices_file.exists():
            data = json.loads(self._devices_file.read_text(encoding="utf-8"))
            self.ctx.supervisor.disabled.update(data.get("disabled", []))
        logging.getLogger().addHandler(self.ring)

    async def run(self) -> None:
        """Report commands cut off by a restart during probation, then idle."""
        await self.ctx.ready.wait()
        current = self.host.running
        for version in self.host.interrupted:
            if not version.origin.startswith("command:"):
                continue
            detail = (
                f"The gateway restarted during the probation of config version {version.n}; "
                f"it runs version {current.version if current else '?'} again."
            )
            body = {
                "cmd_id": version.origin.removeprefix("command:"),
                "outcome": "rejected",
                "reason": "rolled_back",
                "detail": detail,
            }
            await self.ctx.final_ack("config", body)
        await idle()

    async def close(self) -> None:
        """Stop keeping log lines."""
        logging.getLogger().removeHandler(self.ring)

    def stats(self) -> dict[str, Any]:
        """Config changes applied, rolled back and refused; the running version."""
        running = self.host.running
        return {**self.counts, "config_version": running.version if running else None}

    # -- config ---------------------------------------------------------------------------

    async def _config(self, cmd: Command) -> dict[str, Any] | None:
        if cmd.action == "get":
            return self._get()
        if cmd.action == "apply":
            text = cmd.params.get("yaml")
            if not isinstance(text, str) or not text.strip():
                raise CommandRejected("missing_field", "'params.yaml' must hold the whole config.")
            base = cmd.params.get("base_hash")
            if not isinstance(base, str):
                raise CommandRejected("missing_field", "'params.base_hash' is required.")
            return await self._change(cmd, text, base)
        number = cmd.params.get("version")
        version = self.store.get(number) if isinstance(number, int) else None
        if version is None:
            kept = ", ".join(str(v.n) for v in self.store.versions)
            detail = f"No kept config version {number!r}; kept: {kept}."
            raise CommandRejected("unknown_version", detail)
        stored = await asyncio.to_thread(self.store.read, version.n)
        return await self._change(cmd, stored, cmd.params.get("base_hash"))

    def _get(self) -> dict[str, Any]:
        running = self.host.running
        assert running is not None
        return {
            "yaml": mask_yaml(running.text, self.ctx.config.inline_secrets),
            "sha256": running.sha256,
            "applied_at": rfc3339(running.applied_at),
            "origin": running.origin,
            "version": running.version,
            "versions": [
                {"n": v.n, "sha256": v.sha256, "origin": v.origin, "state": str(v.state)}
                for v in self.store.versions
            ],
        }

    async def _change(self, cmd: Command, text: str, base: Any) -> dict[str, Any]:
        if self._changing.locked():
            raise CommandRejected("busy", "Another config change is on probation; retry later.")
        async with self._changing:
            try:
                config = await self._validate(text, base)
            except CommandRejected:
                self.counts["refused"] += 1
                raise
            return await self._probation(cmd, config, text)

    async def _validate(self, text: str, base: Any) -> Config:
        running = self.host.running
        assert running is not None
        if base is not None and base != running.sha256:
            detail = f"The config changed since (base_hash mismatch); current: {running.sha256}."
            raise CommandRejected("stale_base", detail)
        path = self.host.config_path
        base_dir = path.parent.absolute() if path is not None else self.store.dir
        try:
            config = await asyncio.to_thread(
                parse_config, text, "remote", self.host.registry, base_dir=base_dir
            )
        except ConfigError as err:
            raise CommandRejected("invalid_config", "\n".join(map(str, err.issues))) from None
        if config.inline_secrets:
            # issue 11: secrets may only come as ${ENV} or *_file references; never stored.
            names = ", ".join(config.inline_secrets)
            detail = f"Inline secrets at {names}: use '${{VAR}}' or '<key>_file'."
            raise CommandRejected("inline_secret", detail)
        if config.gateway.state_dir != self.ctx.config.gateway.state_dir:
            detail = "'gateway.state_dir' can only be changed on site (the versions live there)."
            raise CommandRejected("invalid_value", detail)
        if config.mqtt is None:
            raise CommandRejected("invalid_value", "A remote config must keep its 'mqtt' section.")
        return config

    async def _probation(self, cmd: Command, config: Config, text: str) -> dict[str, Any]:
        previous, old_config, origin = self.host.running, self.ctx.config, f"command:{cmd.id}"
        assert previous is not None
        version = await asyncio.to_thread(self.store.add, text, origin, VersionState.TENTATIVE)
        # `accepted` only once the tentative mark is on disk: a crash after it is reported.
        await cmd.accept()
        started = time.monotonic()
        changes = await self.host.apply_config(config, text, origin, version.n)
        applied_ms = round((time.monotonic() - started) * 1000, 1)
        failure = await self._watch(config.fleet.probation)
        if failure is not None:
            log.error("Config version %d failed probation: %s; rolling back", version.n, failure)
            await self.host.apply_config(
                old_config, previous.text, previous.origin, previous.version
            )
            await asyncio.to_thread(self.store.mark, version.n, VersionState.ROLLED_BACK)
            self.counts["rolled_back"] += 1
            detail = f"{failure}; config version {previous.version} restored."
            raise CommandRejected("rolled_back", detail)
        await asyncio.to_thread(self.store.mark, version.n, VersionState.CONFIRMED)
        self.counts["applied"] += 1
        log.info("Config version %d confirmed after probation (%s)", version.n, origin)
        return {
            "sha256": version.sha256,
            "version": version.n,
            "applied_ms": applied_ms,
            "probation_s": config.fleet.probation,
            **changes,
        }

    async def _watch(self, probation: float) -> str | None:
        """What failed during probation, or None: the core stayed alive, the uplink is up."""
        deadline = time.monotonic() + probation
        while (left := deadline - time.monotonic()) > 0:
            if not self.ctx.core_alive():
                return "a core service stopped during probation"
            await asyncio.sleep(min(POLL, left))
        uplink = self.ctx.status().get("uplink") or {}
        if uplink.get("state") != "connected":
            error = uplink.get("last_error") or "no error reported"
            return f"the uplink was not connected after {probation:g}s of probation ({error})"
        return None

    # -- diag -----------------------------------------------------------------------------

    async def _diag(self, cmd: Command) -> dict[str, Any]:
        running = self.host.running
        config = self.ctx.config
        text = report(
            self.ctx.status(),
            list(self.ring.lines),
            config={
                "sha256": running.sha256 if running else None,
                "version": running.version if running else None,
                "origin": running.origin if running else None,
            },
            disk=config.gateway.state_dir,
            secrets=secret_values(config),
            max_size=config.fleet.diag_max_size,
        )
        bodies = parts(cmd.id, text)
        for body in bodies:
            await self.ctx.sink.send("diag", body, BUSINESS)
        await self.ctx.sink.drain()  # the parts are queued before the ack that announces them
        return {
            "topic": "diag",
            "parts": len(bodies),
            "bytes": len(text),
            "sha256": bodies[0]["sha256"],
        }

    # -- device ---------------------------------------------------------------------------

    async def _device(self, cmd: Command) -> dict[str, Any]:
        device = cmd.params.get("device")
        supervisor = self.ctx.supervisor
        if not isinstance(device, str):
            raise CommandRejected("missing_field", "'params.device' (a device id) is required.")
        if device not in supervisor.runners:
            known = ", ".join(supervisor.runners) or "none"
            raise CommandRejected("unknown_device", f"No device {device!r}; devices: {known}.")
        if cmd.action == "disable":
            await supervisor.disable(device)
        elif cmd.action == "enable":
            await supervisor.enable(device)
        else:
            await supervisor.restart(device)
        if cmd.action != "restart":
            body = json.dumps({"disabled": sorted(supervisor.disabled)}).encode()
            await asyncio.to_thread(write_atomic, self._devices_file, body)
        runner = supervisor.runners[device]
        for _ in range(round(SETTLE / POLL)):  # bounded: the ack reports the settled health
            if runner.health.state is not HealthState.STARTING:
                break
            await asyncio.sleep(POLL)
        return {"device": device, "health": runner.snapshot()}


def build(ctx: ServiceContext) -> Service | None:
    """Present when commands can arrive (an `mqtt` section) and the daemon has a config file."""
    host = ctx.host
    if ctx.router is None or host is None or host.config_store is None:
        return None
    return Fleet(ctx, host, host.config_store)
