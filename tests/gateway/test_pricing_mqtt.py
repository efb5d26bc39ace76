"""Prices over real mosquitto: `storegw run` in a subprocess, the OEPL simulator in this process.

A price applied and acknowledged through the broker, then a promotion scheduled 2 s ahead
that starts on time from the gateway's own clock while the broker is down.
"""

from __future__ import annotations

import hashlib
import json
import signal
import textwrap
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from drivers.openepaperlink.simulator import ApSimulator
from tests.broker import Subscriber
from tests.contract_schema import validate
from tests.daemon_proc import start
from tests.labels_env import prices_result_errors, wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from tests.broker import Broker

PREFIX = "storegw/shop-6/gw-1"
MAC = "0000021A0B3C4D5E"


def rfc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def acks(msgs: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in msgs if m.topic == f"{PREFIX}/cmd/prices/ack"]


def _config(tmp_path: Path, broker: Broker, sim: ApSimulator) -> Path:
    cfg = tmp_path / "storegw.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            gateway: {{store: shop-6, id: gw-1, state_dir: {tmp_path / "state"}}}
            mqtt: {{host: 127.0.0.1, port: {broker.port}, keepalive: 5s, reconnect: {{initial: 100ms, max: 1s}}}}
            outbox: {{commit_interval: 5ms}}
            labels: {{pause: 0s}}
            catalog:
              currency: EUR
              skus:
                - {{sku: "0012345", name: Milk 1L, labels: ["{MAC}"]}}
            devices:
              - {{id: ap-1, driver: openepaperlink, url: "{sim.url}"}}
            """
        )
    )
    return cfg


async def test_prices_over_mqtt_and_a_promotion_on_time_with_the_broker_down(
    broker: Broker, tmp_path: Path
) -> None:
    sim = ApSimulator([MAC], confirm_delay=0.05)
    await sim.start()
    cfg = _config(tmp_path, broker, sim)
    try:
        async with Subscriber(broker, f"{PREFIX}/#") as sub:
            p = await start(cfg)
            try:
                # Commands are heard once the uplink has subscribed (after its birth message).
                await sub.wait_for(lambda m: any(x.topic == f"{PREFIX}/status" for x in m))
                regular = {"sku": "0012345", "price": "0.99", "currency": "EUR", "version": 1}
                sub.publish(
                    f"{PREFIX}/cmd/prices",
                    json.dumps({"id": "p-1", "params": {"items": [regular]}}).encode(),
                )
                msgs = await sub.wait_for(
                    lambda m: any(a["outcome"] == "done" for a in acks(m)), timeout=20
                )
                done = next(a for a in acks(msgs) if a["outcome"] == "done")
                validate("cmd/prices/ack", done)
                assert prices_result_errors(done["result"]) == []
                assert done["result"]["items"][0]["outcome"] == "applied"

                begins = time.time() + 2.0
                promo = {**regular, "version": 2, "promo_price": "0.79", "valid_from": rfc(begins)}
                sub.publish(
                    f"{PREFIX}/cmd/prices",
                    json.dumps({"id": "p-2", "params": {"items": [promo]}}).encode(),
                )
                msgs = await sub.wait_for(
                    lambda m: any(a["cmd_id"] == "p-2" and a["outcome"] == "done" for a in acks(m)),
                    timeout=10,
                )
                scheduled = next(
                    a for a in acks(msgs) if a["cmd_id"] == "p-2" and a["outcome"] == "done"
                )
                validate("cmd/prices/ack", scheduled)
                assert scheduled["result"]["items"][0]["outcome"] == "scheduled"
                broker.stop()  # the internet is gone; the shop's clock is not
                await wait_until(lambda: len(sim.uploads) >= 2, sim.changed, timeout=10)
                promoted = sim.uploads[1]
                assert begins <= promoted.at < begins + 0.5
                assert any("0,79 €" in json.dumps(e, ensure_ascii=False) for e in promoted.script)
            finally:
                p.proc.send_signal(signal.SIGTERM)
                assert await p.finish() == 0
    finally:
        await sim.stop()


async def test_a_final_ack_over_120_kb_arrives_in_parts(broker: Broker, tmp_path: Path) -> None:
    sim = ApSimulator([MAC], confirm_delay=0.05)
    await sim.start()
    cfg = _config(tmp_path, broker, sim)
    # One good item and 1,200 for SKUs the catalog does not know: each gets its own result.
    items = [{"sku": "0012345", "price": "0.99", "currency": "EUR", "version": 1}]
    items += [
        {"sku": f"9{i:06d}", "price": "1.00", "currency": "EUR", "version": 1} for i in range(1200)
    ]
    try:
        async with Subscriber(broker, f"{PREFIX}/#") as sub:
            p = await start(cfg)
            try:
                await sub.wait_for(lambda m: any(x.topic == f"{PREFIX}/status" for x in m))
                sub.publish(
                    f"{PREFIX}/cmd/prices",
                    json.dumps({"id": "big", "params": {"items": items}}).encode(),
                )

                def parts(msgs: list[Any]) -> list[dict[str, Any]]:
                    return [a for a in acks(msgs) if "part" in a]

                msgs = await sub.wait_for(
                    lambda m: any(a["part"]["n"] == a["part"]["total"] for a in parts(m)),
                    timeout=20,
                )
            finally:
                p.proc.send_signal(signal.SIGTERM)
                assert await p.finish() == 0
    finally:
        await sim.stop()
    received = [m for m in msgs if m.topic == f"{PREFIX}/cmd/prices/ack"]
    assert all(len(m.payload) <= 120_000 for m in received)
    got = parts(msgs)
    assert [a["part"]["n"] for a in got] == list(range(1, got[0]["part"]["total"] + 1))
    for a in got:
        validate("cmd/prices/ack", a)
        assert (a["cmd_id"], a["outcome"]) == ("big", "done")
    text = "".join(a["data"] for a in got)
    assert hashlib.sha256(text.encode()).hexdigest() == got[0]["sha256"]
    whole = json.loads(text)
    assert whole["id"] == got[0]["part"]["of"]
    validate("cmd/prices/ack", whole)
    assert prices_result_errors(whole["result"]) == []
    outcomes = [r["outcome"] for r in whole["result"]["items"]]
    assert outcomes[0] == "applied"
    assert outcomes[1:] == ["rejected"] * 1200
