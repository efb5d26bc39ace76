"""`storegw doctor`'s broker checks: the name resolves, TCP connects, TLS verifies, expiry.

Blocking sockets with short timeouts: the doctor is a one-shot command, not the daemon.
Each failure names what was tried and the fix, so a technician on site can act on it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
from typing import TYPE_CHECKING

from cryptography import x509

from gateway.doctor_verdict import Level, Verdict

if TYPE_CHECKING:
    from pathlib import Path

    from gateway.config.mqtt import MqttConfig

TIMEOUT = 5.0
EXPIRY_WARNING_DAYS = 30
# After the handshake a TLS 1.3 server sends its verdict on our client certificate as an
# alert (RFC 8446 §4.4.2.4): wait this long for one before calling the handshake good.
ALERT_WAIT = 1.0


def broker_verdicts(mqtt: MqttConfig | None) -> list[Verdict]:
    """Resolve, connect, and (with tls) handshake with the configured broker."""
    if mqtt is None:
        return [Verdict(Level.OK, "broker", "no mqtt section: events are printed, not sent")]
    where = f"{mqtt.host}:{mqtt.port}"
    try:
        infos = socket.getaddrinfo(mqtt.host, mqtt.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return [
            Verdict(
                Level.FAIL,
                "broker",
                f"cannot resolve {mqtt.host!r}: {exc}",
                "check mqtt.host and the DNS server (/etc/resolv.conf, `getent hosts HOST`)",
            )
        ]
    addresses = sorted({str(info[4][0]) for info in infos})
    out = [Verdict(Level.OK, "broker", f"{mqtt.host} resolves to {', '.join(addresses)}")]
    try:
        sock = socket.create_connection((mqtt.host, mqtt.port), timeout=TIMEOUT)
    except ConnectionRefusedError:
        out.append(
            Verdict(
                Level.FAIL,
                "broker",
                f"{where} refuses TCP connections (nothing listens there)",
                "check that the broker runs and mqtt.port is right (8883 for TLS, 1883 plain)",
            )
        )
        return out
    except OSError as exc:
        out.append(
            Verdict(
                Level.FAIL,
                "broker",
                f"cannot connect to {where}: {exc.strerror or exc}",
                "check the network route and any firewall between the shop and the broker",
            )
        )
        return out
    with sock:
        out.append(Verdict(Level.OK, "broker", f"{where} accepts TCP connections"))
        if mqtt.tls is not None:
            out += _tls_verdicts(sock, mqtt)
    return out


def _tls_verdicts(sock: socket.socket, mqtt: MqttConfig) -> list[Verdict]:
    tls = mqtt.tls
    assert tls is not None
    out: list[Verdict] = []
    if tls.cert_file is not None:
        out += _client_cert_verdicts(tls.cert_file)
        if any(v.level is Level.FAIL for v in out):
            return out
    try:
        ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        if tls.cert_file is not None:
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (ssl.SSLError, OSError) as exc:
        out.append(
            Verdict(
                Level.FAIL,
                "tls",
                f"cannot load the TLS files: {exc}",
                "ca_file, cert_file and key_file must be PEM; the key must match the certificate",
            )
        )
        return out
    ca = f"ca_file {tls.ca_file}" if tls.ca_file else "the system's CA certificates"
    try:
        with ctx.wrap_socket(sock, server_hostname=mqtt.host) as tls_sock:
            peer = tls_sock.getpeercert() or {}
            tls_sock.settimeout(ALERT_WAIT)
            # Silence is consent: a broker that took our certificate waits for CONNECT.
            with contextlib.suppress(TimeoutError):
                tls_sock.recv(1)
    except ssl.SSLCertVerificationError as exc:
        out.append(
            Verdict(
                Level.FAIL,
                "tls",
                f"the broker's certificate is not trusted by {ca}: {exc.verify_message}",
                "set mqtt.tls.ca_file to the CA that signed the broker's certificate, and "
                "mqtt.host to a name the certificate carries",
            )
        )
        return out
    except ssl.SSLError as exc:
        out.append(
            Verdict(
                Level.FAIL,
                "tls",
                f"the TLS handshake with {mqtt.host} failed: {exc.reason or exc}",
                "the broker may require a client certificate (cert_file/key_file) signed by "
                "its CA, or speak plain MQTT on this port",
            )
        )
        return out
    except OSError as exc:
        out.append(Verdict(Level.FAIL, "tls", f"the TLS connection broke: {exc}", "retry"))
        return out
    out.append(Verdict(Level.OK, "tls", f"handshake with {mqtt.host} verified by {ca}"))
    not_after = peer.get("notAfter")
    if isinstance(not_after, str):
        expires = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), dt.UTC)
        out.append(_expiry("the broker's certificate", expires, "ask the broker's operator"))
    return out


def _client_cert_verdicts(path: Path) -> list[Verdict]:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        return [
            Verdict(
                Level.FAIL,
                "tls",
                f"cannot read the client certificate {path}: {exc}",
                "cert_file must be a PEM certificate readable by the storegw user",
            )
        ]
    return [_expiry(f"client certificate {path}", cert.not_valid_after_utc, "renew it")]


def _expiry(what: str, expires: dt.datetime, fix: str) -> Verdict:
    days = (expires - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    when = expires.strftime("%Y-%m-%d")
    if days < 0:
        return Verdict(Level.FAIL, "tls", f"{what} expired on {when}", fix)
    if days < EXPIRY_WARNING_DAYS:
        return Verdict(Level.WARN, "tls", f"{what} expires in {days:.0f} days ({when})", fix)
    return Verdict(Level.OK, "tls", f"{what} valid until {when} ({days:.0f} days)")
