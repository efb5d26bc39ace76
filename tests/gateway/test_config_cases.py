"""The corpus of broken configs: each case's errors, exactly, in order (style.md §5)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from gateway.config import ConfigError, load_config
from gateway.config import loader as loader_module

if TYPE_CHECKING:
    from gateway.plugins import Registry

CASES = Path(__file__).parent / "config_cases"
ENV = {"BROKER": "broker.local"}


def render(path: Path, registry: Registry) -> list[str]:
    """The error lines for `path`, with the file shown as `config.yaml`."""
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, env=ENV)
    return [str(dataclasses.replace(i, file="config.yaml")) for i in info.value.issues]


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_case(case: str, registry: Registry) -> None:
    expected = (CASES / case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert render(CASES / case / "config.yaml", registry) == expected


@pytest.mark.parametrize(
    "case",
    [
        "tab_indentation",
        "bad_indentation",
        "unclosed_quote",
        "colon_in_value",
        "multiple_documents",
        "undefined_alias",
        "flow_list_not_closed",
    ],
)
def test_pure_python_parser_reports_the_same(
    case: str, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libyaml and PyYAML word syntax errors differently; the technician must not see that.
    monkeypatch.setattr(loader_module, "SafeLoader", yaml.SafeLoader)
    expected = (CASES / case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert render(CASES / case / "config.yaml", registry) == expected


def test_corpus_is_large_enough() -> None:
    assert sum(1 for p in CASES.iterdir() if p.is_dir()) >= 20


def test_errors_are_sorted(registry: Registry) -> None:
    lines = render(CASES / "several_errors_sorted" / "config.yaml", registry)
    positions = [tuple(int(n) for n in line.split(":")[1:3]) for line in lines]
    assert len(lines) >= 4
    assert positions == sorted(positions)
