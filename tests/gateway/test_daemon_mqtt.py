"""The whole daemon against a real mosquitto: contract of every message, kill -9, status.

These run `storegw run` in a subprocess, exactly as systemd would, with a cloud-side
subscriber on the broker.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import textwrap
from typing import TYPE_CHECKING

from tests.broker import Subscriber
from tests.contract_schema import validate
from tests.daemon_proc import start

if TYPE_CHECKING:
    from pathlib import Path

    from tests.broker import Broker

PREFIX = "storegw/shop-7/gw-1"


def write_config(path: Path, port: int, *, sales_per_minute: int = 600) -> None:
    path.write_text(
        textwrap.dedent(
            f"""\
            gateway: {{store: shop-7, id: gw-1, state_dir: {path.parent / "state"}}}
            mqtt: {{host: 127.0.0.1, port: {port}, keepalive: 5s, reconnect: {{initial: 100ms, max: 1s}}}}
            outbox: {{commit_interval: 5ms}}
            aggregation: {{window: 1s}}
            status: {{metrics_interval: 5s}}
            catalog:
              skus:
                - {{sku: "0012345", name: Milk}}
            devices:
              - {{id: meter-1, driver: sim_meter, interval: 100ms}}
              - id: till-1
                driver: sim_pos
                sales_per_minute: {sales_per_minute}
                items: [{{sku: "0012345", price: "0.99"}}]
            """
        )
    )


def payloads(msgs, suffix: str) -> list[dict]:
    return [json.loads(m.payload) for m in msgs if m.topic == f"{PREFIX}/{suffix}"]


async def test_every_published_message_follows_the_asyncapi_contract(
    broker: Broker, tmp_path: Path
) -> None:
    cfg = tmp_path / "storegw.yaml"
    write_config(cfg, broker.port)
    async with Subscriber(broker, f"{PREFIX}/#") as sub:
        p = await start(cfg)
        try:
            # The first telemetry window proves the uplink is subscribed to its commands too.
            await sub.wait_for(lambda m: payloads(m, "status") and payloads(m, "telemetry"))
            sub.publish(f"{PREFIX}/cmd/ping", b'{"id": "ping-1"}')
            sub.publish(f"{PREFIX}/cmd/ping", b"{not json")
            sub.publish(f"{PREFIX}/cmd/frobnicate", b'{"id": "x-1"}')
            needed = ("status", "telemetry", "events/sales", "metrics", "cmd/ping/ack")
            msgs = await sub.wait_for(
                lambda m: (
                    all(payloads(m, s) for s in needed)
                    and len(payloads(m, "cmd/ping/ack")) >= 2
                    and payloads(m, "cmd/frobnicate/ack")
                ),
                timeout=20,
            )
        finally:
            p.proc.send_signal(signal.SIGTERM)
            assert await p.finish() == 0
    seen = 0
    for m in msgs:
        suffix = m.topic.removeprefix(PREFIX + "/")
        if suffix.startswith("cmd/") and not suffix.endswith("/ack"):
            continue  # the commands we sent ourselves
        validate(suffix, json.loads(m.payload))
        seen += 1
    assert seen > 10
    acks = {a.get("reason") or a["outcome"] for a in payloads(msgs, "cmd/ping/ack")}
    assert {"done", "malformed_json"} <= acks
    ping = next(a for a in payloads(msgs, "cmd/ping/ack") if a["outcome"] == "done")
    assert ping["cmd_id"] == "ping-1" and ping["result"]["devices"]["ok"] == 2
    assert payloads(msgs, "cmd/frobnicate/ack")[0]["reason"] == "unknown_command"
    birth = payloads(msgs, "status")[0]
    assert birth["state"] == "online" and len(birth["config_hash"]) == 64


async def test_kill_9_mid_stream_loses_no_accepted_sale(broker: Broker, tmp_path: Path) -> None:
    cfg = tmp_path / "storegw.yaml"
    write_config(cfg, broker.port, sales_per_minute=3000)
    async with Subscriber(broker, f"{PREFIX}/events/sales", client_id="cloud-k9") as sub:
        p = await start(cfg)
        await sub.wait_for(lambda m: len(m) >= 40, timeout=20)
        p.proc.kill()  # SIGKILL: no shutdown, no flush
        await p.finish()
        seen_before = {json.loads(m.payload)["txn"] for m in sub.snapshot()}
        top = max(int(t) for t in seen_before)
        p = await start(cfg)  # same state directory
        try:
            await p.wait_for("running: store shop-7")
            # Everything committed before the kill is re-sent or was already delivered; the
            # till continues its numbering, so txn 1..top must all be there, without gaps.
            await sub.wait_for(
                lambda m: {int(json.loads(x.payload)["txn"]) for x in m} >= set(range(1, top + 1)),
                timeout=20,
            )
        finally:
            p.proc.send_signal(signal.SIGTERM)
            assert await p.finish() == 0


async def test_status_command_reads_the_running_daemon(broker: Broker, tmp_path: Path) -> None:
    cfg = tmp_path / "storegw.yaml"
    write_config(cfg, broker.port)
    p = await start(cfg)
    try:
        await p.wait_for("running: store shop-7")
        for as_json in (False, True):
            args = ["-m", "gateway", "status", "-c", str(cfg)] + (["--json"] if as_json else [])
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            text = out.decode()
            if as_json:
                status = json.loads(text)
                assert {d["id"] for d in status["devices"]} == {"meter-1", "till-1"}
                assert status["outbox"]["depth"].keys() == {"business", "telemetry"}
            else:
                assert "meter-1" in text and "till-1" in text and "shop-7" in text
    finally:
        p.proc.send_signal(signal.SIGTERM)
        assert await p.finish() == 0
    # With the daemon gone, status says so in one sentence (exit 2), no traceback.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "status",
        "-c",
        str(cfg),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "Traceback" not in err.decode() and err.decode().strip()
