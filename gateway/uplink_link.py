"""The uplink's connection bookkeeping: settings, backoff, failure wording, link state.

Kept apart from `gateway/uplink.py` (which holds every aiomqtt call, style.md §11) so the
MQTT module stays about MQTT. Nothing here does IO.
"""

from __future__ import annotations

import logging
import ssl
import statistics
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger("gateway.uplink")


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Everything the uplink needs from the `mqtt:` config section, as plain values."""

    host: str
    client_id: str
    prefix: str  # already filled, e.g. "storegw/shop-1/gw-1"
    gw: str  # gateway.id, for the last will
    port: int = 1883
    version: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password: str | None = None
    use_tls: bool = False  # `tls: {}` in config: TLS with the system's certificate authorities
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    keepalive: int = 60
    connect_timeout: float = 10.0
    session_expiry: int = 7 * 86400
    clean_start: bool = False
    inflight: int = 100
    reconnect_initial: float = 1.0
    reconnect_max: float = 60.0
    max_payload: int = 128_000
    alpn: tuple[str, ...] = ()  # e.g. AWS IoT's "x-amzn-mqtt-ca" for MQTT on port 443
    renew_check: float = 30.0  # how often the clock is re-read while waiting to renew a login

    @property
    def tls(self) -> bool:
        """Whether the connection uses TLS."""
        return self.use_tls or self.tls_ca is not None or self.tls_cert is not None


def tls_context(cfg: MqttSettings) -> ssl.SSLContext:
    """The client TLS context: CA, client certificate, ALPN (blocking: reads files)."""
    ctx = ssl.create_default_context(cafile=str(cfg.tls_ca) if cfg.tls_ca else None)
    if cfg.tls_cert is not None:
        ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    if cfg.alpn:
        ctx.set_alpn_protocols(list(cfg.alpn))
    return ctx


class PahoErrors(logging.Handler):
    """Keeps paho's last error line, which often names the real cause.

    With TLS 1.3 the broker rejects a client certificate after the handshake: paho logs
    "failed to receive on socket: ... alert certificate expired" and aiomqtt only reports
    that the CONNACK wait timed out. The logger is built per uplink (not registered with
    `logging.getLogger`), so two uplinks never see each other's errors.
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str | None = None
        # Deliberately not getLogger: a private logger per uplink, outside the registry.
        self.logger = logging.Logger("gateway.uplink.paho", logging.ERROR)  # noqa: LOG001
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        """Remember the message."""
        self.last = record.getMessage()

    def take(self) -> str | None:
        """The last error since the previous call."""
        last, self.last = self.last, None
        return last


def describe(exc: BaseException, cfg: MqttSettings, paho_error: str | None = None) -> str:
    """One line a technician can act on, for why a connection failed or dropped."""
    text = str(exc)
    if paho_error and ("ssl" in paho_error.lower() or "timed out" in text.lower()):
        text = paho_error
    low = text.lower()
    # aiomqtt 2.5.1's __aenter__ turns every OSError (ssl errors included) into
    # MqttError(str(exc)), so the TLS cause is recognised from OpenSSL's wording.
    if isinstance(exc, ssl.SSLCertVerificationError) or "certificate_verify_failed" in low:
        detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl")[0].strip()
        return f"TLS: the broker's certificate is not trusted by tls_ca {cfg.tls_ca} ({detail})"
    if "alert certificate expired" in low:
        return f"TLS: the broker rejected our client certificate {cfg.tls_cert}: it has expired"
    if "alert unknown ca" in low or "alert bad certificate" in low:
        return f"TLS: the broker rejected our client certificate {cfg.tls_cert} ({text})"
    if "certificate required" in low:
        return "TLS: the broker requires a client certificate (set tls_cert and tls_key)"
    if "timed out" in low:
        return (
            f"no answer to CONNECT within {cfg.connect_timeout:g}s"
            " (something accepts TCP there but does not speak MQTT)"
        )
    if "connection refused" in low:
        return f"connection refused by {cfg.host}:{cfg.port} (is the broker running?)"
    return text or type(exc).__name__


class LinkState(StrEnum):
    """The uplink's connection state, as shown by `storegw status`."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    OFFLINE = "offline"


class Link:
    """Counters of the link and the log-once-down / log-once-up rule (style.md §7)."""

    def __init__(self, cfg: MqttSettings) -> None:
        self.cfg = cfg
        self.state = LinkState.CONNECTING
        self.since = time.time()
        self.connects = 0
        self.disconnects = 0
        self.retries = 0
        self.last_error: str | None = None
        self.publishes = 0
        self.acks = 0
        self.too_large = 0
        self.invalid_topic = 0
        self.refused: dict[str, int] = {}  # MQTT 5 PUBACK failure reason -> messages (kept)
        self.rtts: deque[float] = deque(maxlen=101)
        self._down_at: float | None = None
        self._logged: str | None = None

    def up(self) -> None:
        """The broker accepted CONNECT."""
        where = f"{self.cfg.host}:{self.cfg.port}"
        if self._down_at is not None:
            log.info(
                "MQTT link to %s is back after %.1fs down (%d retries)",
                where,
                time.monotonic() - self._down_at,
                self.retries,
            )
        else:
            log.info("MQTT link to %s is up", where)
        self._down_at, self._logged = None, None
        self.retries = 0
        self.connects += 1
        self.state, self.since = LinkState.CONNECTED, time.time()

    def down(self, reason: str) -> None:
        """A connection attempt failed or a connection was lost."""
        where = f"{self.cfg.host}:{self.cfg.port}"
        self.last_error = reason
        if self.state is LinkState.CONNECTED:
            self.disconnects += 1
            log.warning("MQTT link to %s lost: %s", where, reason)
        else:
            self.retries += 1
            if self._logged != reason:
                # Once per outage, and again only when the cause changes: never per retry.
                verb = "is down" if self._logged is None else "is still down, now"
                log.warning("MQTT link to %s %s: %s", where, verb, reason)
        if self._down_at is None:
            self._down_at = time.monotonic()
        self._logged = reason
        if self.state is not LinkState.OFFLINE:
            self.state, self.since = LinkState.OFFLINE, time.time()

    def stats(self) -> dict[str, Any]:
        """State, connects, disconnects, retries, last error, publishes, acks, RTT, refusals."""
        return {
            "state": str(self.state),
            "since": self.since,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "retries": self.retries,
            "last_error": self.last_error,
            "publishes": self.publishes,
            "acks": self.acks,
            "rtt_ms": round(statistics.median(self.rtts) * 1000, 2) if self.rtts else None,
            "dropped": {"too_large": self.too_large, "invalid_topic": self.invalid_topic},
            "refused": dict(self.refused),
        }
