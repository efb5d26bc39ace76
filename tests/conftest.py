"""Shared fixtures: real mosquitto brokers on free loopback ports, a test PKI, leak checks."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.broker import Broker, Pki

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads running (pymodbus's system_health_check)."""
    before = set(threading.enumerate())
    yield
    # asyncio's default executor threads belong to the event loop the plugin closes.
    deadline = time.monotonic() + 5
    while True:
        extra = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.name.startswith("asyncio_")
        ]
        if not extra or time.monotonic() > deadline:
            break
        extra[0].join(0.1)
    assert not extra, f"threads left running: {[t.name for t in extra]}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, server and client certificates, a rogue CA and an expired client certificate."""
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """Build and start mosquitto instances (plain, TLS, ACL); all are stopped afterwards."""
    made: list[Broker] = []

    def make(*, start: bool = True, **kw: Any) -> Broker:
        d = tmp_path / f"broker{len(made)}"
        d.mkdir()
        b = Broker(d, **kw)
        made.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    """A plain mosquitto on a free 127.0.0.1 port, anonymous access."""
    return make_broker()
