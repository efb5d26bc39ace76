"""The daemon as a technician runs it: `storegw run` in a subprocess, signals, reload."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.daemon_proc import start

CONFIG = """\
gateway: {{store: s1, id: g1, state_dir: {state}, shutdown_timeout: 5s}}
aggregation: {{window: 1s}}
devices:
  - {{id: meter-a, driver: sim_meter, interval: {interval}}}
  - {{id: meter-b, driver: sim_meter, interval: {interval}, seed: 2{extra_b}}}
{more}"""


def write_config(path: Path, *, interval: str = "100ms", extra_b: str = "", more: str = "") -> None:
    path.write_text(
        CONFIG.format(state=path.parent / "state", interval=interval, extra_b=extra_b, more=more)
    )


@pytest.fixture
async def running(tmp_path):
    cfg = tmp_path / "storegw.yaml"
    write_config(cfg)
    p = await start(cfg)
    yield cfg, p
    if p.proc.returncode is None:
        p.proc.kill()
        await p.finish()


async def test_sighup_valid_config_restarts_only_changed_devices(running) -> None:
    cfg, p = running
    await p.wait_for("running: store s1")
    await p.wait_for('"device":"meter-a"', where="out")
    write_config(
        cfg, extra_b=", zone: back", more="  - {id: meter-c, driver: sim_meter, interval: 100ms}\n"
    )
    p.proc.send_signal(signal.SIGHUP)
    line = await p.wait_for("Config applied")
    assert "1 started, 0 stopped, 1 restarted, 1 unchanged" in line
    mark = len(p.out)
    await p.wait_for('"device":"meter-c"', where="out", after=mark)
    await p.wait_for('"zone":"back"', where="out", after=mark)
    p.proc.send_signal(signal.SIGTERM)
    assert await p.finish() == 0


async def test_sighup_invalid_config_keeps_running(running) -> None:
    cfg, p = running
    await p.wait_for("running: store s1")
    cfg.write_text(cfg.read_text().replace("interval: 100ms}", "intervall: 100ms}", 1))
    p.proc.send_signal(signal.SIGHUP)
    refused = await p.wait_for("Reload refused")
    assert "storegw.yaml:4:" in refused and "did you mean 'interval'" in refused
    await p.wait_for("Keeping the running config")
    mark = len(p.out)
    await p.wait_for('"device":"meter-a"', where="out", after=mark)  # still producing
    p.proc.send_signal(signal.SIGTERM)
    assert await p.finish() == 0
    assert not any("Traceback" in line for line in p.err)


async def test_sigterm_under_load_stops_in_time_and_flushes_windows(tmp_path) -> None:
    cfg = tmp_path / "storegw.yaml"
    write_config(cfg, interval="10ms")
    p = await start(cfg)
    await p.wait_for('"device":"meter-b"', where="out")
    t0 = time.monotonic()
    p.proc.send_signal(signal.SIGTERM)
    assert await p.finish() == 0
    assert time.monotonic() - t0 < 6  # inside shutdown_timeout (5s) plus start-up slack
    partial = [json.loads(line.split(" ", 1)[1]) for line in p.out if '"partial":true' in line]
    assert {m["device"] for m in partial} == {"meter-a", "meter-b"}  # open windows were flushed
    assert "Stopped" in p.err[-1]


async def test_bad_config_exits_1_without_traceback(tmp_path) -> None:
    cfg = tmp_path / "storegw.yaml"
    cfg.write_text("gateway:\n\tstore: x\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "run",
        "-c",
        str(cfg),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 1
    text = err.decode()
    assert text.startswith(f"{cfg}:2:1: ")
    assert "Traceback" not in text


def test_demo_config_in_the_package_is_the_repo_one() -> None:
    repo = Path(__file__).parents[2]
    assert (repo / "gateway/data/demo.yaml").read_text() == (repo / "config/demo.yaml").read_text()


def test_every_example_config_validates(tmp_path: Path) -> None:
    import os
    import re

    from gateway.config import load_config
    from gateway.plugins import discover

    registry = discover()
    configs = sorted((Path(__file__).parents[2] / "config").glob("*.yaml"))
    assert configs
    # The cloud examples read keys and certificates from systemd credentials: stand-ins
    # (base64 text, so a device key validates too) in a credentials directory.
    for path in configs:
        for name in re.findall(r"\$\{CREDENTIALS_DIRECTORY\}/([\w.-]+)", path.read_text()):
            (tmp_path / name).write_text("c3RhbmQtaW4ta2V5LWZvci10ZXN0cw==\n")
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(tmp_path)}
    for path in configs:
        load_config(path, registry, env=env)
