"""Price commands to labels: ack latency for one label and throughput of a 5,000-label batch.

`storegw run` (a subprocess, as systemd runs it) on a local mosquitto, with the
OpenEPaperLink simulator in this process confirming each upload instantly and
`labels.pause: 0s` (contract.md "Labels": the benchmark measures the gateway's own cost).
Latency is from the command's publish to the final `done` ack's arrival, both seen by a
cloud-side paho client; it includes the upload, the simulated confirmation, the outbox
commit and two broker hops. Goals (issue 6): p99 < 50 ms for one label; the batch limited
by the access point, not by us. Prints a table and writes bench/results/labels.json.

    PYTHONPATH=. .venv/bin/python bench/labels.py [--commands 300]

A `ping` command's round trip (same broker, router and outbox path, no label work) is
measured too: the difference is the pricing path's own overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from drivers.openepaperlink.simulator import ApSimulator
from tests.broker import HOST, Broker, no_delay
from tests.daemon_proc import start

PREFIX = "storegw/bench/gw-1"
SKUS, LABELS_PER_SKU = 100, 50


class Cloud:
    """A paho client that timestamps every `done` ack on arrival (its own thread)."""

    def __init__(self, port: int) -> None:
        self.done: dict[str, float] = {}
        self.online = threading.Event()
        self._cond = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-cloud")
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.connect(HOST, port)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, *_: object) -> None:
        no_delay(client)  # measure the gateway, not the test client's Nagle delay
        client.subscribe(f"{PREFIX}/#", qos=1)

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        if msg.topic == f"{PREFIX}/status":
            self.online.set()
        elif msg.topic in (f"{PREFIX}/cmd/prices/ack", f"{PREFIX}/cmd/ping/ack"):
            body = json.loads(msg.payload)
            if body["outcome"] == "done":
                with self._cond:
                    self.done[body["cmd_id"]] = now
                    self._cond.notify_all()

    def wait(self, cmd_id: str, timeout: float) -> float:
        """Arrival time of `cmd_id`'s done ack."""
        with self._cond:
            if not self._cond.wait_for(lambda: cmd_id in self.done, timeout):
                raise TimeoutError(f"no done ack for {cmd_id}")
            return self.done[cmd_id]

    def send(self, cmd_id: str, items: list[dict[str, object]] | None) -> float:
        """Publish a prices command (a ping when `items` is None); returns the time before."""
        name, body = (
            ("ping", {"id": cmd_id})
            if items is None
            else ("prices", {"id": cmd_id, "params": {"items": items}})
        )
        payload = json.dumps(body).encode()
        t0 = time.perf_counter()
        self.client.publish(f"{PREFIX}/cmd/{name}", payload, qos=1)
        return t0

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def mac(sku: int, n: int) -> str:
    return f"{sku:08X}{n:08X}"


def config(d: Path, port: int, url: str) -> Path:
    def labels(s: int) -> str:
        return ", ".join(mac(s, n) for n in range(LABELS_PER_SKU))

    skus = "\n".join(
        f'    - {{sku: "{s}", name: Item {s}, labels: [{labels(s)}]}}' for s in range(SKUS)
    )
    skus += f'\n    - {{sku: "single", name: Single, labels: ["{mac(999, 0)}"]}}'
    path = d / "storegw.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            gateway: {{store: bench, id: gw-1, state_dir: {d / "state"}}}
            mqtt: {{host: 127.0.0.1, port: {port}}}
            outbox: {{commit_interval: 2ms}}
            commands: {{max_size: 1MB}}
            labels: {{pause: 0s}}
            logging: {{level: warning}}
            devices:
              - {{id: ap-1, driver: openepaperlink, url: "{url}"}}
            catalog:
              skus:
            """
        )
        + skus
        + "\n"
    )
    return path


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


async def bench(commands: int) -> dict[str, object]:
    """Run both measurements; returns the results."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        broker = Broker(d)
        broker.start()
        macs = [mac(s, n) for s in range(SKUS) for n in range(LABELS_PER_SKU)] + [mac(999, 0)]
        sim = ApSimulator(macs, confirm_delay=0.0)
        await sim.start()
        proc = await start(config(d, broker.port, sim.url))
        cloud = Cloud(broker.port)
        try:
            await asyncio.to_thread(cloud.online.wait, 30)
            # Warm-up: the driver's first /get_db of 5,001 tags and WebSocket connect.
            warm = {"sku": "single", "price": "0.50", "currency": "EUR", "version": 0}
            cloud.send("warm-up", [warm])
            await asyncio.to_thread(cloud.wait, "warm-up", 120)
            pings, latencies = [], []
            for i in range(commands):
                t0 = cloud.send(f"ping-{i}", None)
                pings.append((await asyncio.to_thread(cloud.wait, f"ping-{i}", 10) - t0) * 1000)
            for i in range(1, commands + 1):
                item = {
                    "sku": "single",
                    "price": f"{1 + i / 100:.2f}",
                    "currency": "EUR",
                    "version": i,
                }
                t0 = cloud.send(f"one-{i}", [item])
                latencies.append((await asyncio.to_thread(cloud.wait, f"one-{i}", 10) - t0) * 1000)
            items = [
                {"sku": str(s), "price": "2.49", "currency": "EUR", "version": 1}
                for s in range(SKUS)
            ]
            t0 = cloud.send("batch", items)
            elapsed = await asyncio.to_thread(cloud.wait, "batch", 600) - t0
        finally:
            cloud.close()
            proc.proc.terminate()
            await proc.finish()
            await sim.stop()
            broker.stop()
        labels = SKUS * LABELS_PER_SKU
        return {
            "ping_baseline": {
                "p50_ms": round(statistics.median(pings), 2),
                "p99_ms": round(pct(pings, 0.99), 2),
            },
            "single_label": {
                "commands": commands,
                "p50_ms": round(statistics.median(latencies), 2),
                "p99_ms": round(pct(latencies, 0.99), 2),
                "max_ms": round(max(latencies), 2),
            },
            "batch": {
                "labels": labels,
                "items": SKUS,
                "seconds": round(elapsed, 2),
                "labels_per_s": round(labels / elapsed, 1),
            },
            "uploads_seen_by_ap": len(sim.uploads),
            "python": platform.python_version(),
            "machine": platform.machine(),
        }


def main() -> None:
    """Run, print a table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=300)
    args = parser.parse_args()
    result = asyncio.run(bench(args.commands))
    single, batch, ping = result["single_label"], result["batch"], result["ping_baseline"]
    assert isinstance(single, dict)
    assert isinstance(batch, dict)
    assert isinstance(ping, dict)
    print(f"{'measure':<38}{'value':>12}")
    print(f"{'ping ack latency p50 (ms, baseline)':<38}{ping['p50_ms']:>12}")
    print(f"{'ping ack latency p99 (ms, baseline)':<38}{ping['p99_ms']:>12}")
    print(f"{'single label, ack latency p50 (ms)':<38}{single['p50_ms']:>12}")
    print(f"{'single label, ack latency p99 (ms)':<38}{single['p99_ms']:>12}")
    print(f"{'single label, ack latency max (ms)':<38}{single['max_ms']:>12}")
    print(f"{'5,000-label batch, seconds to ack':<38}{batch['seconds']:>12}")
    print(f"{'5,000-label batch, labels/s':<38}{batch['labels_per_s']:>12}")
    out = Path(__file__).parent / "results" / "labels.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
