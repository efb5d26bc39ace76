"""Uplink over mutual TLS against mosquitto with `require_certificate true`."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from gateway.outbox import DeliveryClass
from tests.broker import PREFIX, Broker, LogWatch, Pki, Subscriber, open_outbox, running, settings

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


async def test_mutual_tls_delivers(
    make_broker: Callable[..., Broker], pki: Pki, tmp_path: Path
) -> None:
    b = make_broker(pki=pki)
    cfg = settings(b, tls_ca=pki.ca, tls_cert=pki.client_cert, tls_key=pki.client_key)
    async with open_outbox(tmp_path / "o.db") as ob, Subscriber(b, f"{PREFIX}/#") as sub:
        await ob.put("events/sales", b'{"txn":1}', DeliveryClass.BUSINESS)
        async with running(cfg, ob) as up:
            msgs = await sub.wait_for(lambda m: any(x.topic.endswith("sales") for x in m))
            assert up.connected
    assert json.loads(msgs[-1].payload) == {"txn": 1}


async def _fails_with(cfg_kw: dict[str, Path], needle: str, b: Broker, tmp_path: Path) -> str:
    cfg = settings(b, **cfg_kw)
    async with (
        LogWatch(needle).attached() as watch,
        open_outbox(tmp_path / "o.db") as ob,
        running(cfg, ob) as up,
    ):
        async with asyncio.timeout(10):
            await watch.seen.wait()
        assert not up.connected
    lines = [line for line in watch.lines if needle in line]
    assert len(lines) == 1, watch.lines  # one line per outage, retries are only counted
    return lines[0]


async def test_wrong_ca_is_one_clear_line(
    make_broker: Callable[..., Broker], pki: Pki, tmp_path: Path
) -> None:
    b = make_broker(pki=pki)
    kw = {"tls_ca": pki.other_ca, "tls_cert": pki.client_cert, "tls_key": pki.client_key}
    line = await _fails_with(kw, "not trusted by tls_ca", b, tmp_path)
    assert str(pki.other_ca) in line


async def test_expired_client_cert_is_one_clear_line(
    make_broker: Callable[..., Broker], pki: Pki, tmp_path: Path
) -> None:
    b = make_broker(pki=pki)
    kw = {
        "tls_ca": pki.ca,
        "tls_cert": pki.expired_cert,
        "tls_key": pki.expired_cert.with_suffix(".key"),
    }
    line = await _fails_with(kw, "client certificate", b, tmp_path)
    assert "expired" in line
