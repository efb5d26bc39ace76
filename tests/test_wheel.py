"""The built wheel, installed into a fresh virtualenv, runs the demo (contract.md "Packaging").

This proves the wheel carries what `storegw demo` needs (the demo config, the simulators,
the drivers' data files) and that the runtime dependencies in pyproject.toml are complete.
It uses the package index like any installation would (pip's cache makes reruns quick).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_wheel_installs_and_runs_the_demo(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = dist.glob("storegw-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "gateway/data/demo.yaml" in names
    assert not any(n.startswith("tests/") for n in names)  # the wheel stays free of tests
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", f"{wheel}[demo]"],
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    demo = subprocess.run(
        [str(venv / "bin/storegw"), "demo", "--duration", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "status    online" in demo.stdout
    assert "stopped cleanly" in demo.stdout
