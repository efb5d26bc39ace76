"""`storegw doctor` against deliberately broken setups: each fault gives its verdict line."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

from gateway.doctor import run_doctor
from tests.broker import HOST, free_port
from tests.daemon_proc import start

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pytest

    from tests.broker import Broker, Pki


def _config(tmp_path: Path, *, mqtt: str = "", links: str = "") -> Path:
    cfg = tmp_path / "storegw.yaml"
    cfg.write_text(
        f"gateway: {{store: s1, id: g1, state_dir: {tmp_path / 'state'}}}\n{mqtt}{links}"
    )
    return cfg


def _doctor(cfg: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = run_doctor(cfg)
    return code, capsys.readouterr().out.splitlines()


def _line(lines: list[str], *parts: str) -> str:
    found = [line for line in lines if all(p in line for p in parts)]
    assert found, f"no line with {parts}:\n" + "\n".join(lines)
    return found[0]


def test_missing_port_and_wrong_ca(
    tmp_path: Path,
    make_broker: Callable[..., Broker],
    pki: Pki,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broker = make_broker(pki=pki)
    missing = tmp_path / "dev" / "ttyUSB9"
    cfg = _config(
        tmp_path,
        mqtt=(
            f"mqtt: {{host: {HOST}, port: {broker.port}, tls: {{ca_file: {pki.other_ca}, "
            f"cert_file: {pki.client_cert}, key_file: {pki.client_key}}}}}\n"
        ),
        links=f"links:\n  - {{id: rs485, path: {missing}}}\n",
    )
    code, lines = _doctor(cfg, capsys)
    assert code == 1
    serial = _line(lines, "FAIL", "serial", f"link rs485: {missing} does not exist")
    assert "/dev/serial/by-id/" in serial
    assert _line(lines, "OK", "broker", f"{HOST}:{broker.port} accepts TCP")
    tls = _line(lines, "FAIL", "tls", "not trusted by ca_file")
    assert str(pki.other_ca) in tls and "fix: set mqtt.tls.ca_file" in tls
    # The test PKI's certificates live 30 days: inside the warning window.
    assert _line(lines, "WARN", "tls", "client certificate", "expires in 30 days")
    assert lines[-1].startswith("FAILED: ")


def test_broker_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    cfg = _config(tmp_path, mqtt=f"mqtt: {{host: {HOST}, port: {port}}}\n")
    code, lines = _doctor(cfg, capsys)
    assert code == 1
    line = _line(lines, "FAIL", "broker", f"{HOST}:{port} refuses TCP connections")
    assert "fix: check that the broker runs" in line


def test_expired_client_certificate(
    tmp_path: Path,
    pki: Pki,
    capsys: pytest.CaptureFixture[str],
    make_broker: Callable[..., Broker],
) -> None:
    broker = make_broker(pki=pki)
    cfg = _config(
        tmp_path,
        mqtt=(
            f"mqtt: {{host: {HOST}, port: {broker.port}, tls: {{ca_file: {pki.ca}, "
            f"cert_file: {pki.expired_cert}, key_file: {pki.client_key}}}}}\n"
        ),
    )
    code, lines = _doctor(cfg, capsys)
    assert code == 1
    assert _line(lines, "FAIL", "tls", "client certificate", "expired on")


def test_a_healthy_setup_passes(
    tmp_path: Path,
    make_broker: Callable[..., Broker],
    pki: Pki,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broker = make_broker(pki=pki)
    controller, port = os.openpty()  # a real character device standing in for a serial port
    try:
        cfg = _config(
            tmp_path,
            mqtt=(
                f"mqtt: {{host: {HOST}, port: {broker.port}, tls: {{ca_file: {pki.ca}, "
                f"cert_file: {pki.client_cert}, key_file: {pki.client_key}}}}}\n"
            ),
            links=f"links:\n  - {{id: rs485, path: {os.ttyname(port)}}}\n",
        )
        code, lines = _doctor(cfg, capsys)
    finally:
        os.close(controller)
        os.close(port)
    assert not [line for line in lines if line.startswith("FAIL")], lines
    assert code == 0
    assert _line(lines, "OK", "config", "valid, 0 devices")
    assert _line(lines, "OK", "serial", "link rs485")
    assert _line(lines, "OK", "tls", f"handshake with {HOST} verified by ca_file")
    assert _line(lines, "WARN", "tls", "the broker's certificate expires in 30 days")
    assert _line(lines, "OK", "disk", "free for the outbox")
    assert _line(lines, "daemon", "storegw is not running")
    assert _line(lines, "clock")


async def test_a_running_daemon_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, links="devices:\n  - {id: m1, driver: sim_meter, interval: 1s}\n")
    p = await start(cfg)
    try:
        await p.wait_for("running: store s1")
        code, lines = _doctor(cfg, capsys)
    finally:
        p.proc.terminate()
        await p.finish()
    assert code == 0, lines
    assert _line(lines, "OK", "daemon", "storegw runs (pid", "no uplink")


def test_a_broken_config_is_reported_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "storegw.yaml"
    cfg.write_text("gateway: {store: s1, id: g1}\nmqtt: {host: x, prot: 1883}\n")
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "doctor", "-c", str(cfg)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stdout + run.stderr
    assert f"FAIL  config   {cfg}:2:" in run.stdout and "did you mean 'port'" in run.stdout
    assert "storegw check -c FILE" in run.stdout
    # The checks that need no config still run.
    assert "clock" in run.stdout
