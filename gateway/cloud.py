"""The cloud side of the daemon: outbox, uplink and command router, built from config.

Present only when the config has an `mqtt` section; without it the daemon prints what it
would send (console sink) and takes no commands.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from gateway.clouds.aliyun import AliyunProfile
from gateway.clouds.aws import ALPN, AwsProfile
from gateway.clouds.azure import AzureProfile
from gateway.clouds.base import Profile
from gateway.commands import CommandRouter, ping_handler
from gateway.outbox import DeliveryClass, Outbox
from gateway.payloads import PART_LIMIT, encode, in_parts
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
    aws = m.aws if m.profile == "aws-iot" else None
    alpn = aws is not None and (aws.alpn if aws.alpn is not None else m.port == 443)
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
        alpn=(ALPN,) if alpn else (),
    )


def build_profile(config: Config, settings: MqttSettings) -> Profile:
    """The cloud profile (`mqtt.profile`, `mqtt.format`) the uplink speaks."""
    m = config.mqtt
    assert m is not None
    s = settings
    if m.format == "sparkplug":
        # Imported only here: the protobuf runtime costs ~3 MB RSS (style.md §11 budget).
        from gateway.sparkplug.node import SparkplugNode  # noqa: PLC0415

        sp = m.sparkplug
        return SparkplugNode(
            group=(sp.group_id if sp else None) or config.gateway.store,
            edge=(sp.edge_node_id if sp else None) or config.gateway.id,
            client_id=s.client_id,
            devices={d.id: d.driver for d in config.devices},
            primary_host=sp.primary_host_id if sp else None,
            username=s.username,
            password=s.password,
            state_file=config.gateway.state_dir / "sparkplug.bdseq",
        )
    if m.profile == "azure-iot-hub" and m.azure is not None:
        az = m.azure
        return AzureProfile(
            s.prefix,
            hub=az.hub or m.host,
            device_id=az.device_id,
            device_key=az.device_key.get() if az.device_key is not None else None,
            token_ttl=az.token_ttl,
            heartbeat=az.heartbeat,
            api_version=az.api_version,
        )
    secret = m.aliyun.device_secret if m.aliyun is not None else None
    if m.profile == "aliyun-iot" and m.aliyun is not None and secret is not None:
        al = m.aliyun
        return AliyunProfile(
            s.prefix,
            product_key=al.product_key,
            device_name=al.device_name,
            device_secret=secret.get(),
            client_id=al.client_id or al.device_name,
            sign_method=al.sign_method,
            secure_mode=al.secure_mode or (2 if m.tls is not None else 3),
            timestamp=al.timestamp,
            property_post=al.property_post,
        )
    if m.profile == "aws-iot":
        return AwsProfile(s.prefix, s.client_id)
    return Profile(s.prefix, s.client_id, username=s.username, password=s.password)


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
        self.uplink = self._make_uplink(config)
        self._uplink_task: asyncio.Task[None] | None = None

    def _make_uplink(self, config: Config) -> Uplink:
        return Uplink(
            self.settings,
            self.outbox,
            birth=self._birth,
            on_command=self.router.dispatch,
            profile=build_profile(config, self.settings),
        )

    async def _send_ack(self, topic: str, body: dict[str, Any]) -> None:
        # Acks are business messages: never dropped, delivered in order with sales.
        whole = self.stamper.stamp(body)
        payload = encode(whole)
        if len(payload) <= PART_LIMIT:
            await self.outbox.put(topic, payload, DeliveryClass.BUSINESS)
            return
        # A big batch's final ack (thousands of price items): in parts, in order, each
        # under the broker contract's payload limit.
        for part in in_parts(whole, keep=("cmd_id", "outcome")):
            await self.outbox.put(topic, encode(self.stamper.stamp(part)), DeliveryClass.BUSINESS)

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
        self.uplink = self._make_uplink(config)
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
        up.setdefault("profile", self.uplink.profile.name)
        return {
            "uplink": up,
            "outbox": self.outbox.stats(),
            "commands": self.router.stats(),
        }
