"""The cloud side of the daemon: outbox, uplink and command router, built from config.

Present only when the config has an `mqtt` section; without it the daemon prints what it
would send (console sink) and takes no commands.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from gateway.commands import CommandRouter, ping_handler
from gateway.outbox import DeliveryClass, Outbox
from gateway.payloads import encode
from gateway.sinks import OutboxSink
from gateway.uplink import MqttSettings, Uplink

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.config import Config
    from gateway.payloads import Stamper


def mqtt_settings(config: Config) -> MqttSettings:
    """The uplink's plain settings from the validated `mqtt` section."""
    m = config.mqtt
    assert m is not None
    password = m.password.get() if m.password is not None else None
    tls = m.tls
    return MqttSettings(
        host=m.host,
        client_id=m.client_id,
        prefix=m.prefix,
        gw=config.gateway.id,
        port=m.port,
        version=m.version,
        username=m.username,
        password=password,
        use_tls=tls is not None,
        tls_ca=tls.ca_file if tls else None,
        tls_cert=tls.cert_file if tls else None,
        tls_key=tls.key_file if tls else None,
        keepalive=round(m.keepalive),
        connect_timeout=m.connect_timeout,
        session_expiry=round(m.session_expiry),
        clean_start=m.clean_start,
        inflight=m.inflight,
        reconnect_initial=m.reconnect.initial,
        reconnect_max=m.reconnect.max,
        max_payload=m.max_payload,
    )


class Cloud:
    """Outbox + uplink + commands for one daemon."""

    def __init__(
        self,
        config: Config,
        stamper: Stamper,
        *,
        birth: Callable[[], dict[str, Any]],
        summary: Callable[[], dict[str, Any]],
    ) -> None:
        ob = config.outbox
        self.outbox = Outbox(
            ob.path,
            max_size=ob.max_size,
            min_free_disk=ob.min_free_disk,
            commit_interval=ob.commit_interval,
            ttl={
                DeliveryClass.BUSINESS: ob.ttl.business,
                DeliveryClass.TELEMETRY: ob.ttl.telemetry,
            },
        )
        self.stamper = stamper
        self.sink = OutboxSink(stamper, self.outbox)
        cmd = config.commands
        self.router = CommandRouter(
            send_ack=self._send_ack,
            store_path=config.gateway.state_dir / "commands.sqlite",
            max_size=cmd.max_size,
            remember=cmd.remember,
            public_keys=cmd.public_keys,
            require_signature=cmd.require_signature,
        )
        self.router.register("ping", ping_handler(summary))
        self._birth = birth
        self.settings = mqtt_settings(config)
        self.uplink = Uplink(
            self.settings, self.outbox, birth=birth, on_command=self.router.dispatch
        )
        self._uplink_task: asyncio.Task[None] | None = None

    async def _send_ack(self, topic: str, body: dict[str, Any]) -> None:
        # Acks are business messages: never dropped, delivered in order with sales.
        await self.outbox.put(topic, encode(self.stamper.stamp(body)), DeliveryClass.BUSINESS)

    async def open(self) -> None:
        """Open the outbox and the command store (before devices start)."""
        await self.outbox.open()
        await self.router.open()

    def start_uplink(self) -> asyncio.Task[None]:
        """Start (or restart) the uplink task."""
        self._uplink_task = asyncio.create_task(self.uplink.run(), name="uplink")
        return self._uplink_task

    async def restart_uplink(self, config: Config) -> asyncio.Task[None]:
        """New broker settings: stop the uplink (it finishes in-flight acks) and start anew."""
        await self.stop_uplink()
        self.settings = mqtt_settings(config)
        self.uplink = Uplink(
            self.settings, self.outbox, birth=self._birth, on_command=self.router.dispatch
        )
        return self.start_uplink()

    async def stop_uplink(self) -> None:
        """Cancel the uplink and wait for it to disconnect."""
        task, self._uplink_task = self._uplink_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Stop the uplink, close the router and the outbox (committing what is pending)."""
        await self.stop_uplink()
        await self.router.close()
        await self.sink.drain()
        await self.outbox.close()

    def stats(self) -> dict[str, Any]:
        """Uplink, outbox and command counters for status and metrics."""
        up = self.uplink.stats()
        up.setdefault("host", self.settings.host)
        up.setdefault("port", self.settings.port)
        return {
            "uplink": up,
            "outbox": self.outbox.stats(),
            "commands": self.router.stats(),
        }
