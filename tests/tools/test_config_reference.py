"""docs/configuration.md's key reference is generated from the models: it must be current."""

from __future__ import annotations

from tools.config_reference import BEGIN, END, PAGE, render


def test_configuration_reference_is_current() -> None:
    page = PAGE.read_text(encoding="utf-8")
    generated = page[page.index(BEGIN) : page.index(END) + len(END)]
    assert generated == render(), "docs/configuration.md is stale: python -m tools.config_reference"
