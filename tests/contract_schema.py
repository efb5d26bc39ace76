"""Validate a payload against the JSON Schema of its topic in docs/asyncapi.yaml.

`validate("cmd/ping/ack", body)` finds the channel whose address (without `{prefix}/`)
matches the topic suffix and checks the payload against its message's schema with JSON
Schema draft 2020-12, raising an AssertionError that names the topic, the failing path and
the payload.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no py.typed
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.yaml"
_BASE = "urn:storegw:asyncapi"


@dataclass(frozen=True, slots=True)
class Channel:
    """One channel: its key, its address pattern, and a validator of its payload."""

    key: str
    address: str
    pattern: re.Pattern[str]
    validator: Draft202012Validator


@functools.cache
def document() -> dict[str, Any]:
    """The AsyncAPI document, parsed once."""
    with DOCUMENT.open(encoding="utf-8") as fh:
        doc: dict[str, Any] = yaml.safe_load(fh)
    return doc


def resolve(ref: str) -> Any:
    """The node a local `#/a/b` reference points to."""
    assert ref.startswith("#/"), f"only local references are used, got {ref!r}"
    node: Any = document()
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _deref(node: Any) -> Any:
    while isinstance(node, dict) and set(node) == {"$ref"}:
        node = resolve(node["$ref"])
    return node


def _address_pattern(address: str) -> re.Pattern[str]:
    suffix = address.removeprefix("{prefix}/")
    parts = re.split(r"(\{[a-z_]+\})", suffix)
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(regex)


@functools.cache
def channels() -> tuple[Channel, ...]:
    """Every channel of the document, with its payload validator."""
    registry: Registry[Any] = Registry().with_resource(
        _BASE, Resource.from_contents(document(), default_specification=DRAFT202012)
    )
    found = []
    for key, channel in document()["channels"].items():
        messages = [_deref(m) for m in channel["messages"].values()]
        assert len(messages) == 1, f"channel {key!r} should carry one message type"
        payload = messages[0]["payload"]
        schema = {"$ref": _BASE + payload["$ref"]} if "$ref" in payload else payload
        validator = Draft202012Validator(schema, registry=registry)
        pattern = _address_pattern(channel["address"])
        found.append(Channel(key, channel["address"], pattern, validator))
    return tuple(found)


def channel_for(topic_suffix: str) -> Channel:
    """The channel whose address matches `topic_suffix` (e.g. `events/sales`)."""
    matches = [c for c in channels() if c.pattern.fullmatch(topic_suffix)]
    assert len(matches) == 1, f"topic suffix {topic_suffix!r} matches channels {matches!r}"
    return matches[0]


def errors(topic_suffix: str, payload: Any) -> list[str]:
    """Readable validation errors (`path: message`), empty when the payload is valid."""
    validator = channel_for(topic_suffix).validator
    found = sorted(validator.iter_errors(payload), key=lambda e: list(map(str, e.path)))
    return [f"{e.json_path}: {e.message}" for e in found]


def validate(topic_suffix: str, payload: Any) -> None:
    """Raise AssertionError when `payload` breaks the contract of `topic_suffix`."""
    problems = errors(topic_suffix, payload)
    if problems:
        shown = json.dumps(payload, ensure_ascii=False, default=str)[:2000]
        raise AssertionError(
            f"payload on {topic_suffix!r} breaks docs/asyncapi.yaml:\n  "
            + "\n  ".join(problems)
            + f"\npayload: {shown}"
        )
