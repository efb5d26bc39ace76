"""Driver discovery through the `storegw.drivers` entry-point group, as a third party uses it.

The test writes a tiny installed distribution (a package plus its `.dist-info` with
`entry_points.txt`, exactly what pip leaves in site-packages) into a temporary directory
on `sys.path`, so discovery goes through importlib.metadata like for any real plug-in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from gateway.plugins import discover

if TYPE_CHECKING:
    from pathlib import Path

PLUGIN = """
from typing import Literal
import asyncio
from pydantic import Field
from gateway import Driver, DriverConfig, DriverContext, Reading

class ThermoConfig(DriverConfig):
    driver: Literal["acme_thermo"] = "acme_thermo"
    host: str = Field(description="Thermometer address.")

class Thermo(Driver):
    name = "acme_thermo"
    summary = "ACME network thermometer (third-party plug-in)"
    Config = ThermoConfig

    async def run(self, ctx: DriverContext) -> None:
        while True:
            ts, mono = ctx.clock.now()
            await ctx.emit(Reading(ctx.device_id, "temperature", 4.0, "C", ts, mono))
            ctx.health.ok()
            await asyncio.sleep(0.05)
"""


def install_fake_distribution(root: Path, entry_points: str, module: str = PLUGIN) -> None:
    pkg = root / "acme_storegw"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(module))
    info = root / "acme_storegw-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-storegw\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    install_fake_distribution(
        tmp_path,
        """
        [storegw.drivers]
        acme_thermo = acme_storegw:Thermo
        acme_broken = acme_storegw:DoesNotExist
        acme_misnamed = acme_storegw:ThermoConfig
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("acme_storegw")]:
        del sys.modules[mod]


def test_builtin_drivers_are_registered_through_entry_points() -> None:
    registry = discover()
    assert {"sim_meter", "sim_pos"} <= set(registry.drivers)


def test_third_party_plugin_is_discovered_and_broken_ones_are_named(plugin_path) -> None:
    registry = discover()
    assert registry.drivers["acme_thermo"].summary.startswith("ACME")
    assert "DoesNotExist" in registry.errors["acme_broken"]
    assert "not a storegw Driver" in registry.errors["acme_misnamed"]
    assert "sim_meter" in registry.drivers  # a broken plug-in never stops the others


def test_plugin_end_to_end_through_the_cli(plugin_path, tmp_path) -> None:
    cfg = tmp_path / "store.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            gateway: {{store: s1, id: g1, state_dir: {tmp_path / "state"}}}
            devices:
              - {{id: fridge-1, driver: acme_thermo, host: 10.0.0.5}}
              - {{id: fridge-2, driver: acme_thermo, hots: 10.0.0.6}}
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "check", "-c", str(cfg)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1
    assert f"{cfg}:4:41: devices[1].hots: unknown key 'hots'; did you mean 'host'?" in out.stderr
    assert "Traceback" not in out.stderr
    assert "acme_broken" in out.stderr  # the load error is shown, not hidden
    drivers = subprocess.run(
        [sys.executable, "-m", "gateway", "drivers"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert "acme_thermo: ACME network thermometer" in drivers.stdout
    assert "host" in drivers.stdout
