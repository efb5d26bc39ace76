"""`storegw demo`: a whole simulated store on this machine, nothing to set up.

An embedded MQTT broker (amqtt, the `demo` extra) listens on a free loopback port; the
real daemon runs the demo config (simulated meters and a till) against it over MQTT 3.1.1
(amqtt speaks only 3.1.1); a subscriber standing in for the cloud prints what arrives,
and a `ping` command is sent to show the command channel and its ack.

Besides the `sim_*` devices of config/demo.yaml, the demo starts two simulators that speak
the real wire protocols on loopback ports, and adds the matching devices: an Eastron
SDM630 energy meter over Modbus TCP (pymodbus's own server) and a fixed RFID reader over
LLRP watching a shelf of SGTIN-96-tagged pencils that sell one by one. With onnxruntime
installed, stockout prediction runs too.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import socket
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from gateway import logs
from gateway.config import ConfigError, load_config
from gateway.daemon import Daemon
from gateway.plugins import discover

log = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PENCIL_GTIN = "4006381333931"  # the demo catalog's pencil (config/demo.yaml)


def demo_config_text(
    state_dir: Path, port: int, *, modbus_port: int | None = None, llrp_port: int | None = None
) -> str:
    """The packaged demo config, pointed at a private state dir and the embedded broker,
    plus the devices of the protocol simulators that are running."""
    text = resources.files("gateway").joinpath("data/demo.yaml").read_text(encoding="utf-8")
    text = text.replace("state_dir: /tmp/storegw-demo", f"state_dir: {state_dir}")
    if modbus_port is not None:
        text += (
            "  - id: meter-hvac\n"
            "    driver: modbus\n"
            f"    url: tcp://127.0.0.1:{modbus_port}\n"
            "    profile: eastron_sdm630\n"
            "    zone: hvac\n"
            "    interval: 1s\n"
        )
        # Meters default to 15-minute (billing) windows: shorten this one for the demo.
        text = text.replace(
            "  window: 10s", "  window: 10s\n  device_windows: {meter-hvac: 10s}", 1
        )
    if llrp_port is not None:
        text += (
            "  - id: rfid-shelf\n"
            "    driver: llrp\n"
            "    host: 127.0.0.1\n"
            f"    port: {llrp_port}\n"
            "    zones: {1: shelf-a}\n"
            "    absence_timeout: 3s\n"
        )
    text += (
        "\nmqtt:\n"
        "  host: 127.0.0.1\n"
        f"  port: {port}\n"
        '  version: "3.1.1"\n'
        "  keepalive: 30s\n"
        "status:\n"
        "  metrics_interval: 30s\n"
    )
    if importlib.util.find_spec("onnxruntime") is not None:
        text += "inference:\n  interval: 1m\n"
    return text


class Simulators:
    """The protocol simulators the demo runs beside the daemon (each on a free port)."""

    def __init__(self) -> None:
        self.modbus: Any = None
        self.llrp: Any = None
        self.modbus_port: int | None = None
        self.llrp_port: int | None = None

    async def start(self) -> None:
        """Start what can start; a simulator that fails is left out, with a warning."""
        from drivers.llrp.simulator import LLRPSimulator, TagPopulation
        from drivers.modbus.profiles import load_profile
        from drivers.modbus.simulator import ModbusSimulator

        try:
            self.modbus = ModbusSimulator.of({1: load_profile("eastron_sdm630").registers})
            self.modbus_port = await self.modbus.start_tcp()
        except Exception as exc:  # the demo goes on without this device
            log.warning("Modbus meter simulator not started: %s", exc)
            self.modbus = None
        try:
            tags = TagPopulation(antennas=1, sale_rate=0.003, seed=3)
            tags.stock(PENCIL_GTIN.zfill(14), 30, antenna=1)
            self.llrp = LLRPSimulator(tags, cycle=0.5)
            await self.llrp.start()
            self.llrp_port = self.llrp.port
        except Exception as exc:
            log.warning("LLRP reader simulator not started: %s", exc)
            self.llrp = None

    async def stop(self) -> None:
        """Stop every simulator that runs."""
        for sim in (self.modbus, self.llrp):
            if sim is not None:
                with contextlib.suppress(Exception):
                    await sim.stop()


def describe(topic: str, payload: dict[str, Any]) -> str:
    """One human line for a message the cloud received."""
    kind = topic.split("/", 3)[-1]
    if kind == "events/sales":
        return (
            f"sale      {payload['device']} txn {payload['txn']:>4}  {payload['sku']}"
            f"  {payload['qty']} x {payload['price']} = {payload['amount']} {payload['currency']}"
        )
    if kind == "telemetry":
        parts = []
        for name, m in payload["metrics"].items():
            value = f"+{m['delta']:.4f}" if "delta" in m else f"{m['mean']:.2f}"
            parts.append(f"{name} {value} {m['unit']}".rstrip())
        more = f" (+{len(parts) - 6} more)" if len(parts) > 6 else ""
        window = payload["window"]["end"][11:19]
        return f"telemetry {payload['device']} window→{window}  " + ", ".join(parts[:6]) + more
    if kind == "inventory":
        items = ", ".join(
            f"{i['sku']}={i['on_shelf']:g} ({i['source']})" for i in payload.get("items", [])[:6]
        )
        return f"inventory {items}"
    if kind in ("predictions", "alerts"):
        return f"{kind:<9} {json.dumps(payload.get('items', payload))[:150]}"
    if kind == "status":
        return f"status    {payload.get('state')} {json.dumps(payload, sort_keys=True)}"
    if kind.startswith("cmd/") and kind.endswith("/ack"):
        return f"ack       {kind}: {payload.get('outcome')} {json.dumps(payload.get('result'))}"
    return f"{kind:<9} {json.dumps(payload)[:160]}"


async def _cloud(port: int, prefix: str, out: TextIO, stop: asyncio.Event) -> None:
    """Subscribe to everything the gateway publishes; send one `ping` command."""
    from amqtt.client import MQTTClient
    from amqtt.mqtt.constants import QOS_1

    client = MQTTClient(client_id="demo-cloud")
    await client.connect(f"mqtt://127.0.0.1:{port}/")
    await client.subscribe([(f"{prefix}/#", QOS_1)])
    pinged = False
    started = time.monotonic()
    try:
        while not stop.is_set():
            if not pinged and time.monotonic() - started > 3:
                command = {"id": f"demo-ping-{int(time.time())}"}
                out.write(f"{'':>12}→ cloud sends {prefix}/cmd/ping {json.dumps(command)}\n")
                await client.publish(f"{prefix}/cmd/ping", json.dumps(command).encode(), qos=QOS_1)
                pinged = True
            try:
                message = await client.deliver_message(timeout_duration=1)
            except TimeoutError:
                continue
            if message is None:
                continue
            topic = message.topic
            if topic.startswith(f"{prefix}/cmd/") and not topic.endswith("/ack"):
                continue  # our own command, echoed by the subscription
            try:
                payload = json.loads(bytes(message.data or b""))
                line = describe(topic, payload)
            except (ValueError, KeyError, TypeError):
                line = f"{topic} {message.data!r}"
            out.write(f"{time.strftime('%H:%M:%S')}  {line}\n")
            out.flush()
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()


async def _demo(duration: float | None, out: TextIO) -> int:
    from amqtt.broker import Broker

    port = _free_port()
    sims = Simulators()
    await sims.start()
    with tempfile.TemporaryDirectory(prefix="storegw-demo-") as tmp:
        registry = discover()
        text = demo_config_text(
            Path(tmp) / "state", port, modbus_port=sims.modbus_port, llrp_port=sims.llrp_port
        )
        # A real file, as in production: remote config, diag and device commands need one.
        path = Path(tmp) / "demo.yaml"
        path.write_text(text, encoding="utf-8")
        config = load_config(path, registry)
        broker = Broker({"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}}})
        await broker.start()
        daemon = Daemon(config, registry, config_path=path)
        prefix = daemon.prefix
        out.write(
            f"storegw demo: broker on 127.0.0.1:{port}, store {config.gateway.store}, "
            f"{len(config.devices)} simulated devices. Ctrl-C stops.\n"
            f"What the cloud receives on {prefix}/#:\n"
        )
        stop = asyncio.Event()
        daemon_task = asyncio.create_task(daemon.run(), name="demo:daemon")
        cloud_task = asyncio.create_task(_cloud(port, prefix, out, stop), name="demo:cloud")
        try:
            async with asyncio.timeout(duration):
                await asyncio.wait({daemon_task, cloud_task}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            pass
        finally:
            daemon.request_stop()
            code = await daemon_task
            stop.set()
            with contextlib.suppress(Exception):
                await cloud_task
            await broker.shutdown()
            await sims.stop()
        out.write("storegw demo: stopped cleanly\n")
        return code


def run_demo(duration: float | None = None, log_level: str = "warning") -> int:
    """Run the demo until Ctrl-C or `duration` seconds; returns the exit code."""
    try:
        import amqtt  # noqa: F401
    except ImportError:
        print(
            "storegw demo needs its embedded broker: pip install 'storegw[demo]'", file=sys.stderr
        )
        return 1
    logs.setup(log_level)
    try:
        return asyncio.run(_demo(duration, sys.stdout))
    except ConfigError as err:  # only if the packaged demo config is broken
        for issue in err.issues:
            print(issue, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
