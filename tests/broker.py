"""Test peers for the uplink: a real mosquitto on a free loopback port, a cloud-side
subscriber (paho on its own thread), a small PKI made with `cryptography`, and the
harness the uplink tests share (settings, an open outbox, a running uplink, log waits).

The broker is restartable on the same port, so outage tests can stop and start it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import ipaddress
import logging
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

import paho.mqtt.client as paho
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from gateway.outbox import DeliveryClass, Outbox
from gateway.uplink import MqttSettings, Uplink

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path
    from types import TracebackType

MOSQUITTO = "/usr/sbin/mosquitto"
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, *, up: bool, deadline: float = 10.0) -> None:
    """Wait until the port accepts (or refuses) connections, failing after `deadline`."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.02)  # polling a condition with a deadline, not a timing guess
    raise TimeoutError(f"port {port} not {'up' if up else 'down'} after {deadline}s")


@dataclass
class Pki:
    """Paths of a test CA, server and client certificates (plus a rogue CA, an expired cert)."""

    dir: Path
    ca: Path = field(init=False)
    other_ca: Path = field(init=False)
    server_cert: Path = field(init=False)
    server_key: Path = field(init=False)
    client_cert: Path = field(init=False)
    client_key: Path = field(init=False)
    expired_cert: Path = field(init=False)

    def __post_init__(self) -> None:
        d = self.dir
        ca_key, ca_cert = _ca("storegw test CA")
        other_key, other_cert = _ca("someone else's CA")
        del other_key
        now = dt.datetime.now(dt.UTC)
        self.ca = _write(d / "ca.pem", ca_cert)
        self.other_ca = _write(d / "other-ca.pem", other_cert)
        self.server_cert, self.server_key = _leaf(d, "server", ca_key, ca_cert, now, server=True)
        self.client_cert, self.client_key = _leaf(d, "client", ca_key, ca_cert, now)
        past = now - dt.timedelta(days=30)
        self.expired_cert, _ = _leaf(d, "expired", ca_key, ca_cert, past, days=1)


def _write(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=365))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    d: Path,
    name: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    start: dt.datetime,
    *,
    server: bool = False,
    days: int = 30,
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(HOST if server else f"gw-{name}"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(hours=1))
        .not_valid_after(start + dt.timedelta(days=days))
    )
    if server:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))])
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    key_path = d / f"{name}.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return _write(d / f"{name}.pem", cert), key_path


class Broker:
    """A mosquitto process on a fixed free port; `stop()`/`start()` keep the port."""

    def __init__(
        self,
        dir: Path,  # noqa: A002
        *,
        pki: Pki | None = None,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        port: int | None = None,
        persistence: bool = False,
    ) -> None:
        self.dir = dir
        self.port = port or free_port()
        self.pki = pki
        self.users = users
        self.acl = acl
        self.persistence = persistence
        self.log = dir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {HOST}",
            # Started as root (CI), mosquitto would drop to user "mosquitto", which cannot
            # read the test's private temporary directory; as any other user this is a no-op.
            "user root",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.dir}/",
            f"log_dest file {self.log}",
            "log_type all",
            "max_queued_messages 100000",
            # Latency is measured through this broker: without it, Nagle + delayed ACK add
            # 40 ms to every small packet that follows another (mosquitto.conf(5)).
            "set_tcp_nodelay true",
        ]
        if self.pki:
            lines += [
                f"cafile {self.pki.ca}",
                f"certfile {self.pki.server_cert}",
                f"keyfile {self.pki.server_key}",
                "require_certificate true",
            ]
        if self.users is not None:
            pw = self.dir / "passwd"
            pw.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            subprocess.run(["mosquitto_passwd", "-U", str(pw)], check=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            acl = self.dir / "acl"
            acl.write_text(self.acl)
            lines.append(f"acl_file {acl}")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        """Start mosquitto and wait until it listens."""
        self._proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, up=True)

    def stop(self) -> None:
        """Stop mosquitto (SIGTERM) and wait for the process to exit."""
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def log_text(self) -> str:
        """What mosquitto logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def no_delay(client: paho.Client) -> None:
    """Nagle off on a test client's socket (paho leaves it on): a command published right
    after our PUBACK would otherwise wait 40 ms for the broker's delayed ACK."""
    sock = client.socket()
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Subscriber:
    """A cloud-side MQTT client (paho, own thread) that records every message it receives."""

    def __init__(
        self,
        broker: Broker,
        topic: str,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str = "cloud",
        clean: bool = True,
    ) -> None:
        self.broker = broker
        self.topic = topic
        self.messages: list[paho.MQTTMessage] = []
        self._lock = threading.Lock()
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribed = threading.Event()
        # clean=False: a persistent session, so messages published while the broker was
        # restarting (with persistence) still reach this subscriber.
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean
        )
        self._client.reconnect_delay_set(1, 1)
        if username is not None:
            self._client.username_pw_set(username, password)
        if broker.pki is not None:
            self._client.tls_set(
                ca_certs=str(broker.pki.ca),
                certfile=str(broker.pki.client_cert),
                keyfile=str(broker.pki.client_key),
            )
        self._client.on_message = self._on_message
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_: self._subscribed.set()

    def _on_connect(self, client: paho.Client, *_: object) -> None:
        no_delay(client)
        client.subscribe(self.topic, qos=1)

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(msg)
        if self._loop is not None and self._changed is not None:
            self._loop.call_soon_threadsafe(self._changed.set)

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._client.connect(HOST, self.broker.port)
        self._client.loop_start()
        await asyncio.to_thread(self._subscribed.wait, 10)
        assert self._subscribed.is_set(), "subscriber did not get its SUBACK"
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish as the cloud would (e.g. a command)."""
        self._client.publish(topic, payload, qos=qos)

    def snapshot(self) -> list[paho.MQTTMessage]:
        """The messages received so far."""
        with self._lock:
            return list(self.messages)

    async def wait_for(
        self, pred: Callable[[list[paho.MQTTMessage]], bool], timeout: float = 10.0
    ) -> list[paho.MQTTMessage]:
        """Wait until `pred(messages)` holds; fails after `timeout` seconds."""
        assert self._changed is not None
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                msgs = self.snapshot()
                if pred(msgs):
                    return msgs
                await self._changed.wait()


# --- the uplink tests' harness ---------------------------------------------------

PREFIX = "storegw/shop-1/gw-1"


def settings(broker: Broker | int, **kw: Any) -> MqttSettings:
    """Fast-retrying settings for a broker (or a bare port) on 127.0.0.1."""
    port = broker if isinstance(broker, int) else broker.port
    base = MqttSettings(
        host=HOST,
        port=port,
        client_id="gw-1",
        prefix=PREFIX,
        gw="gw-1",
        keepalive=5,
        connect_timeout=1.0,
        reconnect_initial=0.05,
        reconnect_max=0.5,
        inflight=50,
    )
    return dataclasses.replace(base, **kw)


@contextlib.asynccontextmanager
async def open_outbox(path: Path, **kw: Any) -> AsyncIterator[Outbox]:
    """An open outbox with test-friendly limits."""
    args: dict[str, Any] = {
        "max_size": 50_000_000,
        "min_free_disk": 0,
        "commit_interval": 0.002,
        "ttl": {DeliveryClass.BUSINESS: None, DeliveryClass.TELEMETRY: None},
    }
    args.update(kw)
    ob = Outbox(path, **args)
    await ob.open()
    try:
        yield ob
    finally:
        await ob.close()


async def _ignore(_name: str, _payload: bytes) -> None:
    return None


@contextlib.asynccontextmanager
async def running(
    cfg: MqttSettings,
    outbox: Outbox,
    on_command: Callable[[str, bytes], Awaitable[None]] = _ignore,
) -> AsyncIterator[Uplink]:
    """An uplink whose `run()` is a named task, cancelled (and awaited) on exit."""
    up = Uplink(cfg, outbox, birth=lambda: {"state": "online"}, on_command=on_command)
    task = asyncio.create_task(up.run(), name="uplink")
    try:
        yield up
    finally:
        task.cancel()
        async with asyncio.timeout(5):  # a clean shutdown is bounded
            with contextlib.suppress(asyncio.CancelledError):
                await task


class LogWatch(logging.Handler):
    """Sets an event when a log record containing `needle` arrives (thread-safe)."""

    def __init__(self, needle: str) -> None:
        super().__init__(logging.DEBUG)
        self.needle = needle
        self.seen = asyncio.Event()
        self.lines: list[str] = []
        self._loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        self.lines.append(line)
        if self.needle in line:
            self._loop.call_soon_threadsafe(self.seen.set)

    @contextlib.asynccontextmanager
    async def attached(self) -> AsyncIterator[LogWatch]:
        """Attach to the uplink's logger for the duration of the block."""
        logger = logging.getLogger("gateway.uplink")
        logger.addHandler(self)
        old = logger.level
        logger.setLevel(logging.INFO)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(old)
