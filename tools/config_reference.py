"""Writes the key reference of docs/configuration.md from the config models themselves.

    .venv/bin/python -m tools.config_reference          # rewrite the generated part
    .venv/bin/python -m tools.config_reference --check  # exit 1 when the page is stale

Only the part between the two marker lines is generated; the prose around it is written
by hand.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gateway.config import describe_driver, root_model
from gateway.config.types import format_duration, format_size
from gateway.plugins import discover

PAGE = Path(__file__).parents[1] / "docs" / "configuration.md"
BEGIN = "<!-- BEGIN GENERATED REFERENCE: python -m tools.config_reference -->"
END = "<!-- END GENERATED REFERENCE -->"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out.extend(_models_in(arg))
    return out


def _readable_default(kind: str, default: str, annotation: Any) -> str:
    """Durations and sizes as a technician writes them; sections as a pointer below."""
    if _models_in(annotation) and default not in ("(required)", "None"):
        return "(section below)"
    try:
        number = float(default)
    except ValueError:
        return default.replace("|", "or")
    if kind.startswith("duration"):
        return format_duration(number)
    if kind.startswith("size"):
        return format_size(int(number))
    return default


def _section(model: type[BaseModel], path: str, lines: list[str]) -> None:
    rows = []
    nested: list[tuple[str, type[BaseModel]]] = []
    cls_fields = {name: (f.annotation, f) for name, f in model.model_fields.items()}
    fake = types.SimpleNamespace(Config=model)
    described = {row[0]: row for row in describe_driver(fake)}  # type: ignore[arg-type]
    for name, (annotation, field) in cls_fields.items():
        key, kind, default, description = described.get(
            name, (name, "", "", field.description or "")
        )
        default = _readable_default(kind, default, annotation)
        kind = kind.replace("|", "or")
        rows.append(f"| `{key}` | {kind} | {default} | {description} |")
        nested.extend((f"{path}.{name}", sub) for sub in _models_in(annotation))
    lines += [f"### `{path}`", "", "| key | type | default | meaning |", "|---|---|---|---|"]
    lines += rows
    lines.append("")
    for sub_path, sub in nested:
        _section(sub, sub_path, lines)


def render() -> str:
    """The generated reference (Markdown)."""
    registry = discover()
    root = root_model(registry)
    lines = [BEGIN, ""]
    for name, field in root.model_fields.items():
        if name == "devices":
            continue
        for model in _models_in(field.annotation):
            _section(model, name, lines)
    lines += ["### `devices[]` by driver", ""]
    for name in registry.names():
        cls = registry.drivers[name]
        lines += [f"#### `driver: {name}` — {cls.summary}", ""]
        _section(cls.Config, f"devices[] ({name})", lines)
    lines.append(END)
    return "\n".join(lines)


def main() -> int:
    """Rewrite or check the page."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    page = PAGE.read_text(encoding="utf-8")
    head, _, rest = page.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = head + render() + tail
    if args.check:
        if new != page:
            print(f"{PAGE} is stale: run python -m tools.config_reference", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
