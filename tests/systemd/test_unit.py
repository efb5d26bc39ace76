"""The unit file: `systemd-analyze verify` is clean and `security` rates it ≤ 2.0 (issue 8)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).parents[2] / "systemd"
UNIT = SYSTEMD / "storegw.service"
ANALYZE = shutil.which("systemd-analyze") or "systemd-analyze"
# The targets the unit names or systemd pulls in by default (DefaultDependencies=yes).
TARGETS = (
    "sysinit",
    "basic",
    "multi-user",
    "network-online",
    "time-sync",
    "shutdown",
    "sockets",
    "paths",
    "timers",
    "slices",
    "local-fs",
    "swap",
)

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _root(tmp_path: Path) -> Path:
    """A throwaway root with the unit, stand-ins for its programs, and the stock targets."""
    root = tmp_path / "root"
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    shutil.copy(UNIT, unit_dir)
    for program in ("opt/storegw/bin/storegw", "bin/kill"):
        path = root / program
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    stock = Path("/usr/lib/systemd/system")
    lib = root / "usr/lib/systemd/system"
    lib.mkdir(parents=True)
    for target in TARGETS:
        source = stock / f"{target}.target"
        if source.exists():
            shutil.copy(source, lib)
    return root


@needs_analyze
def test_verify_is_clean(tmp_path: Path) -> None:
    root = _root(tmp_path)
    run = subprocess.run(
        [ANALYZE, "verify", f"--root={root}", "storegw.service"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "" and run.stdout.strip() == ""


@needs_analyze
def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    root = _root(tmp_path)
    unit = root / "etc/systemd/system/storegw.service"
    unit.write_text(unit.read_text().replace("WatchdogSec=30s", "WatchdogSec=soon"))
    run = subprocess.run(
        [ANALYZE, "verify", f"--root={root}", "storegw.service"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert "soon" in run.stderr


@needs_analyze
def test_security_exposure_is_at_most_2(tmp_path: Path) -> None:
    run = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=tmp_path,
    )
    match = re.search(r"Overall exposure level for storegw\.service: (\d+\.\d)", run.stdout)
    assert match, run.stdout + run.stderr
    assert float(match.group(1)) <= 2.0, run.stdout


def test_unit_keeps_the_promises_the_code_relies_on() -> None:
    text = UNIT.read_text()
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#"
    )
    assert settings["Type"] == "notify"  # gateway/systemd.py sends READY=1
    assert settings["RuntimeDirectory"] == "storegw"  # the status socket (contract.md)
    assert settings["StateDirectory"] == "storegw"  # gateway.state_dir's default
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    # TimeoutStopSec must exceed the longest gateway.shutdown_timeout (60 s).
    assert int(settings["TimeoutStopSec"].removesuffix("s")) > 60
    assert settings["SupplementaryGroups"] == "dialout"
    devices = [
        line.split("=", 1)[1] for line in text.splitlines() if line.startswith("DeviceAllow=")
    ]
    assert devices and all(d.startswith("char-tty") and d.endswith(" rw") for d in devices)
