"""Fuzzing the loader: any text gives a Config or a ConfigError, never another exception."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import Config, ConfigError, parse_config
from gateway.config import parse as parse_module

if TYPE_CHECKING:
    from pathlib import Path

    from gateway.plugins import Registry

VALID = """\
gateway: {store: s1, id: gw1}
mqtt: {host: b, port: 1883, keepalive: 30s}
devices:
  - {id: m1, driver: meter, port: /dev/ttyUSB0, baudrate: 9600}
catalog:
  skus: [{sku: "01", name: Tea, gtin: "4006381333931"}]
aggregation: {window: 5m, device_windows: {m1: 1m}}
"""

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=8),
    st.sampled_from(["5s", "0012", "on", "~", "${X}", "$${", "meter", "m1", "64MB", "1e9"]),
)
keys = st.sampled_from(
    [
        "gateway",
        "mqtt",
        "devices",
        "id",
        "driver",
        "store",
        "host",
        "port",
        "skus",
        "catalog",
        "window",
        "password",
        "password_file",
        "tls",
        "cert_file",
        "<<",
        "sku",
        "gtin",
        "x",
    ]
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


def check(text: str, registry: Registry, tmp_path: Path) -> None:
    error: ConfigError | None = None
    try:
        result = parse_config(text, "fuzz", registry, base_dir=tmp_path, env={"X": "1"})
    except ConfigError as exc:
        error = exc
    if error is None:
        assert isinstance(result, Config)
        return
    assert error.issues, "a ConfigError always carries at least one issue"
    positions = [(i.line, i.col) for i in error.issues]
    assert positions == sorted(positions)
    assert all(i.line >= 1 and i.col >= 1 for i in error.issues)
    # The safety net turns bugs into issues too; the fuzzer must still see them.
    assert not any(i.message.startswith("internal error") for i in error.issues), error


# Positional strategies fill the rightmost parameters; fixtures come first.
@FUZZ
@given(st.text(max_size=300))
def test_random_text(registry: Registry, tmp_path: Path, text: str) -> None:
    check(text, registry, tmp_path)


@FUZZ
@given(documents)
def test_random_documents(registry: Registry, tmp_path: Path, data: Any) -> None:
    check(yaml.safe_dump(data, default_flow_style=None), registry, tmp_path)


@FUZZ
@given(st.integers(0, len(VALID) - 1), st.text(max_size=6), st.integers(0, 4))
def test_mutated_valid_config(
    registry: Registry, tmp_path: Path, at: int, insert: str, cut: int
) -> None:
    check(VALID[:at] + insert + VALID[at + cut :], registry, tmp_path)


def test_valid_seed_is_valid(registry: Registry, tmp_path: Path) -> None:
    parse_config(VALID, "fuzz", registry, base_dir=tmp_path, env={})


def test_a_bug_inside_validation_is_still_a_config_error(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(doc: object) -> list[object]:
        raise KeyError("boom")

    monkeypatch.setattr(parse_module, "cross_checks", broken)
    with pytest.raises(ConfigError, match="internal error while validating: KeyError"):
        parse_config(VALID, "fuzz", registry, base_dir=tmp_path, env={})
