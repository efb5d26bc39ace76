"""The driver contract as code (style.md §4): every registered driver, and every driver folder.

Names agree (entry point = class `name` = folder); `Config` forbids unknown keys and
narrows `driver` to its literal; `sample.yaml` validates; the README has the required
sections; tests exist; and no driver module imports MQTT, SQLite or another driver.
"""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.plugins import discover

ROOT = Path(__file__).parents[2]
DRIVERS = ROOT / "drivers"
REGISTRY = discover()
BUILTIN = {
    name: cls for name, cls in REGISTRY.drivers.items() if cls.__module__.startswith("drivers.")
}
SECTIONS = ("What it reads", "Wiring", "Configuration", "Events", "Troubleshooting", "Tested with")
FORBIDDEN = ("aiomqtt", "paho", "sqlite3", "sqlitedict")


def folder_of(cls: type) -> Path:
    return DRIVERS / cls.__module__.split(".")[1]


def test_no_plugin_failed_to_load() -> None:
    assert REGISTRY.errors == {}


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_names_and_config_model(name: str) -> None:
    cls = BUILTIN[name]
    assert cls.name == name
    assert cls.summary and "\n" not in cls.summary
    assert cls.Config.model_config.get("extra") == "forbid"
    assert cls.Config.model_config.get("frozen") is True
    assert typing.get_args(cls.Config.model_fields["driver"].annotation) == (name,)
    for field, info in cls.Config.model_fields.items():
        if field == "driver":
            continue  # the literal narrows the base's documented field
        assert info.description, f"{name}.{field} has no description"


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_folder_has_readme_sample_and_tests(name: str, tmp_path: Path) -> None:
    folder = folder_of(BUILTIN[name])
    readme = (folder / "README.md").read_text()
    for section in SECTIONS:
        assert f"## {section}" in readme, f"{folder}/README.md lacks '## {section}'"
    sample = (folder / "sample.yaml").read_text()
    text = f"gateway: {{store: s, id: g, state_dir: {tmp_path}}}\n" + sample
    config = parse_config(text, f"{folder.name}/sample.yaml", REGISTRY, base_dir=folder)
    assert any(d.driver == name for d in config.devices)
    assert (ROOT / "tests" / "drivers" / folder.name).is_dir()


@pytest.mark.parametrize(
    "module", sorted(p.relative_to(ROOT).as_posix() for p in DRIVERS.glob("*/**/*.py"))
)
def test_driver_modules_import_no_mqtt_sqlite_or_other_driver(module: str) -> None:
    own = module.split("/")[1]
    tree = ast.parse((ROOT / module).read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            assert top not in FORBIDDEN, f"{module} imports {name}"
            if top == "drivers" and "." in name:
                assert name.split(".")[1] == own, f"{module} imports another driver: {name}"
