"""Fleet operations end to end (issue 11): `storegw run` as a subprocess, real mosquitto.

Probation is 2 s here (the default is minutes); every wait is on a message or a log line
with a deadline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import textwrap
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.broker import Subscriber, free_port
from tests.contract_schema import validate
from tests.daemon_proc import Proc, start

if TYPE_CHECKING:
    from pathlib import Path

    from tests.broker import Broker

PREFIX = "storegw/shop-7/gw-1"


def config_text(port: int, state: Path, *, interval: str = "100ms", extra: str = "") -> str:
    """A small config; `interval` changes meter-2 only, `extra` adds top-level lines."""
    return (
        textwrap.dedent(
            f"""\
        gateway: {{store: shop-7, id: gw-1, state_dir: {state}}}
        mqtt: {{host: 127.0.0.1, port: {port}, keepalive: 5s, password: "${{FLEET_TEST_PW}}",
                reconnect: {{initial: 100ms, max: 1s}}, connect_timeout: 1s}}
        outbox: {{commit_interval: 5ms}}
        fleet: {{probation: 2s}}
        devices:
          - {{id: meter-1, driver: sim_meter, interval: 100ms}}
          - {{id: meter-2, driver: sim_meter, interval: {interval}}}
        """
        )
        + extra
    )


def acks(msgs: list[Any], name: str, cmd_id: str) -> list[dict[str, Any]]:
    out = [json.loads(m.payload) for m in msgs if m.topic == f"{PREFIX}/cmd/{name}/ack"]
    return [a for a in out if a["cmd_id"] == cmd_id]


async def command(
    sub: Subscriber, name: str, body: dict[str, Any], timeout: float = 15
) -> dict[str, Any]:
    """Send a command; return its final ack."""
    sub.publish(f"{PREFIX}/cmd/{name}", json.dumps(body).encode())
    final = ("done", "rejected")
    msgs = await sub.wait_for(
        lambda m: any(a["outcome"] in final for a in acks(m, name, body["id"])), timeout=timeout
    )
    return next(a for a in acks(msgs, name, body["id"]) if a["outcome"] in final)


async def running(tmp_path: Path, broker: Broker, sub: Subscriber, **kw: Any) -> tuple[Path, Proc]:
    cfg = tmp_path / "storegw.yaml"
    cfg.write_text(config_text(broker.port, tmp_path / "state", **kw))
    p = await start(cfg)
    await p.wait_for("running: store shop-7")
    await sub.wait_for(lambda m: any(x.topic == f"{PREFIX}/status" for x in m))
    return cfg, p


async def stop(p: Proc) -> None:
    p.proc.send_signal(signal.SIGTERM)
    assert await p.finish() == 0


async def get_config(sub: Subscriber, cmd_id: str) -> dict[str, Any]:
    ack = await command(sub, "config", {"id": cmd_id, "action": "get"})
    assert ack["outcome"] == "done", ack
    result: dict[str, Any] = ack["result"]
    return result


async def test_apply_validates_and_restarts_only_the_changed_device(
    broker: Broker, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("FLEET_TEST_PW", "hunter2-secret")
    state = tmp_path / "state"
    async with Subscriber(broker, f"{PREFIX}/#") as sub:
        _cfg, p = await running(tmp_path, broker, sub)
        try:
            got = await get_config(sub, "get-1")
            assert (
                got["origin"] == "file"
                and got["sha256"] == hashlib.sha256(got["yaml"].encode()).hexdigest()
            )
            base = got["sha256"]
            new = config_text(broker.port, state, interval="200ms")
            stale = await command(
                sub,
                "config",
                {"id": "a-0", "action": "apply", "params": {"yaml": new, "base_hash": "0" * 64}},
            )
            assert stale["reason"] == "stale_base" and base in stale["detail"]
            broken = new.replace("interval: 200ms", "interval: soon").replace("store:", "stor:")
            bad = await command(
                sub,
                "config",
                {"id": "a-1", "action": "apply", "params": {"yaml": broken, "base_hash": base}},
            )
            assert bad["reason"] == "invalid_config"
            lines = bad["detail"].splitlines()
            assert lines[0].startswith("remote:1:") and "'store'" in lines[0]
            assert any(x.startswith("remote:8:") and "devices[1].interval" in x for x in lines)
            inline = new.replace('"${FLEET_TEST_PW}"', "plain-secret")
            secret = await command(
                sub,
                "config",
                {"id": "a-2", "action": "apply", "params": {"yaml": inline, "base_hash": base}},
            )
            assert secret["reason"] == "inline_secret" and "mqtt.password" in secret["detail"]
            assert "plain-secret" not in (state / "config").joinpath("index.json").read_text()
            assert not any(
                "plain-secret" in f.read_text() for f in (state / "config").glob("*.yaml")
            )
            mark = len(p.err)
            ok = await command(
                sub,
                "config",
                {"id": "a-3", "action": "apply", "params": {"yaml": new, "base_hash": base}},
            )
            assert ok["outcome"] == "done", ok
            validate("cmd/config/ack", ok)
            assert ok["result"]["restarted"] == ["meter-2"] and not ok["result"]["uplink_restarted"]
            assert "meter-1" not in "\n".join(p.err[mark:])
            now = await get_config(sub, "get-2")
            assert now["sha256"] == ok["result"]["sha256"] and now["origin"] == "command:a-3"
            assert "hunter2" not in json.dumps(now)
            births = [
                json.loads(m.payload) for m in sub.snapshot() if m.topic == f"{PREFIX}/status"
            ]
            assert births[-1]["config_hash"] == now["sha256"]
            back = await command(
                sub, "config", {"id": "r-1", "action": "rollback", "params": {"version": 1}}
            )
            assert back["outcome"] == "done" and back["result"]["restarted"] == ["meter-2"]
        finally:
            await stop(p)


async def test_dead_broker_is_rolled_back_and_the_gateway_comes_back(
    broker: Broker, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("FLEET_TEST_PW", "pw")
    async with Subscriber(broker, f"{PREFIX}/#") as sub:
        _cfg, p = await running(tmp_path, broker, sub)
        try:
            base = (await get_config(sub, "g-1"))["sha256"]
            dead = config_text(free_port(), tmp_path / "state")
            ack = await command(
                sub,
                "config",
                {"id": "dead-1", "action": "apply", "params": {"yaml": dead, "base_hash": base}},
                timeout=20,
            )
            assert ack["reason"] == "rolled_back", ack
            assert "uplink was not connected" in ack["detail"]
            assert (await get_config(sub, "g-2"))["sha256"] == base  # reachable again, old config
        finally:
            await stop(p)


async def test_kill_9_during_probation_comes_back_on_the_old_config(
    broker: Broker, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("FLEET_TEST_PW", "pw")
    async with Subscriber(broker, f"{PREFIX}/#") as sub:
        cfg, p = await running(tmp_path, broker, sub)
        base = (await get_config(sub, "g-1"))["sha256"]
        new = config_text(broker.port, tmp_path / "state", interval="300ms")
        body = {"id": "k-1", "action": "apply", "params": {"yaml": new, "base_hash": base}}
        sub.publish(f"{PREFIX}/cmd/config", json.dumps(body).encode())
        await sub.wait_for(lambda m: bool(acks(m, "config", "k-1")))  # accepted: on probation now
        p.proc.kill()
        await p.finish()
        p = await start(cfg)
        try:
            ack = await sub.wait_for(
                lambda m: any(a["outcome"] == "rejected" for a in acks(m, "config", "k-1"))
            )
            final = next(a for a in acks(ack, "config", "k-1") if a["outcome"] == "rejected")
            assert (
                final["reason"] == "rolled_back"
                and "restarted during the probation" in final["detail"]
            )
            assert (await get_config(sub, "g-2"))["sha256"] == base
            # The cloud sends k-1 again: it gets the same answer, not a second probation.
            sub.publish(f"{PREFIX}/cmd/config", json.dumps(body).encode())
            again = await sub.wait_for(
                lambda m: any(a.get("duplicate") for a in acks(m, "config", "k-1"))
            )
            repeat = next(a for a in acks(again, "config", "k-1") if a.get("duplicate"))
            assert repeat["outcome"] == "rejected" and repeat["reason"] == "rolled_back"
            assert (await get_config(sub, "g-3"))["sha256"] == base
        finally:
            await stop(p)


async def test_diag_and_device_disable_persist(
    broker: Broker, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("FLEET_TEST_PW", "hunter2-secret")
    async with Subscriber(broker, f"{PREFIX}/#") as sub:
        cfg, p = await running(tmp_path, broker, sub)
        try:
            off = await command(
                sub, "device", {"id": "d-1", "action": "disable", "params": {"device": "meter-2"}}
            )
            assert off["result"]["health"]["state"] == "disabled"
            unknown = await command(
                sub, "device", {"id": "d-2", "action": "restart", "params": {"device": "nope"}}
            )
            assert unknown["reason"] == "unknown_device"
            ack = await command(sub, "diag", {"id": "diag-1"})
            parts = [json.loads(m.payload) for m in sub.snapshot() if m.topic == f"{PREFIX}/diag"]
            assert ack["result"]["parts"] == len(parts) and all(
                len(json.dumps(x)) < 120_000 for x in parts
            )
            for part in parts:
                validate("diag", part)
            text = "".join(x["data"] for x in sorted(parts, key=lambda x: x["part"]["n"]))
            assert hashlib.sha256(text.encode()).hexdigest() == parts[0]["sha256"]
            diag = json.loads(text)
            assert {d["id"] for d in diag["devices"]} == {"meter-1", "meter-2"}
            assert diag["logs"] and "hunter2" not in text and diag["disk"]["free"] > 0
        finally:
            await stop(p)
        p = await start(cfg)
        try:
            await p.wait_for("running: store shop-7")
            kept = {"id": "d-4", "action": "restart", "params": {"device": "meter-2"}}
            assert (await command(sub, "device", kept))["result"]["health"]["state"] == "disabled"
            ack = await command(
                sub, "device", {"id": "d-3", "action": "enable", "params": {"device": "meter-2"}}
            )
            assert ack["result"]["health"]["state"] in {"ok", "starting"}
        finally:
            await stop(p)


async def test_bad_signature_is_rejected_when_signing_is_required(
    broker: Broker, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("FLEET_TEST_PW", "pw")
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    extra = f"commands: {{require_signature: true, public_keys: ['{public.decode()}']}}\n"
    async with Subscriber(broker, f"{PREFIX}/#") as sub:
        _cfg, p = await running(tmp_path, broker, sub, extra=extra)
        try:
            cmd = {"id": "s-1", "action": "disable", "params": {"device": "meter-1"}}
            other = Ed25519PrivateKey.generate()
            canon = json.dumps(cmd, sort_keys=True, separators=(",", ":")).encode()
            forged = {**cmd, "sig": base64.b64encode(other.sign(canon)).decode()}
            ack = await command(sub, "device", forged)
            assert ack["reason"] == "bad_signature"
            good = {**cmd, "id": "s-2"}
            canon = json.dumps(good, sort_keys=True, separators=(",", ":")).encode()
            good["sig"] = base64.b64encode(key.sign(canon)).decode()
            assert (await command(sub, "device", good))["outcome"] == "done"
        finally:
            await stop(p)
