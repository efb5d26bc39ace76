"""docs/asyncapi.yaml: a consistent AsyncAPI 3 document whose schemas accept what we send.

The router's own acks are validated in test_commands.py (every ack it emits); here the
document's structure is checked, and one example of each message type must pass while
each broken variant must fail, naming the offending field.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator  # type: ignore[import-untyped]

from gateway.payloads import Stamper
from tests.contract_schema import channel_for, document, errors, resolve, validate

_STAMP = Stamper("gw-1")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_document_structure() -> None:
    doc = document()
    assert doc["asyncapi"] == "3.0.0"
    for ref in _refs(doc):
        assert resolve(ref) is not None, ref
    for key, channel in doc["channels"].items():
        params = set(re.findall(r"\{([a-z_]+)\}", channel["address"]))
        assert params == set(channel.get("parameters", {})), key
        assert channel["address"].startswith("{prefix}/"), key
    channels = {id(c): k for k, c in doc["channels"].items()}
    covered = set()
    for key, op in doc["operations"].items():
        assert op["action"] in {"send", "receive"}, key
        channel = resolve(op["channel"]["$ref"])
        covered.add(channels[id(channel)])
        for message in op["messages"]:
            assert message["$ref"].startswith(op["channel"]["$ref"] + "/messages/"), key
    assert covered == set(doc["channels"]), "every channel has an operation"
    receive = {k for k, op in doc["operations"].items() if op["action"] == "receive"}
    assert receive == {"receiveCommand"}


@pytest.mark.parametrize("name", sorted(document()["components"]["schemas"]))
def test_schemas_are_valid_in_both_drafts(name: str) -> None:
    schema = document()["components"]["schemas"][name]
    Draft202012Validator.check_schema(schema)
    Draft7Validator.check_schema(schema)


GOOD: list[tuple[str, dict[str, Any]]] = [
    ("status", {"state": "online", "version": "0.1.0", "drivers": ["modbus"], "devices": 3}),
    ("status", {"state": "offline"}),
    (
        "telemetry",
        {
            "device": "meter-main",
            "driver": "modbus",
            "zone": "cold",
            "window": {"start": "2026-12-02T10:45:00.000Z", "end": "2026-12-02T10:46:00.000Z"},
            "metrics": {
                "power": {
                    "unit": "W",
                    "count": 12,
                    "min": 1.5,
                    "max": 9,
                    "mean": 4.2,
                    "last": 3,
                    "sum": 50.4,
                },
                "energy": {"unit": "kWh", "count": 12, "delta": 0.25, "last": 1042.5, "resets": 0},
            },
            "quality": {"bad": 1, "uncertain": 0},
        },
    ),
    (
        "events/sales",
        {
            "device": "till-1",
            "txn": "0012",
            "sku": None,
            "qty": "0.345",
            "price": "12.90",
            "amount": "4.45",
            "currency": "EUR",
            "text": "APPLES",
            "total_mismatch": True,
        },
    ),
    ("metrics", {"uplink": None, "outbox": {"depth": {}}, "devices": [], "commands": {}}),
    ("inventory", {"items": [{"sku": "A1", "on_shelf": 7, "source": "rfid", "zone": "z1"}]}),
    (
        "predictions",
        {"model": "stockout-1.0", "horizon_s": 7200, "items": [{"sku": "A1", "risk": 0.8}]},
    ),
    (
        "alerts",
        {"kind": "stockout_risk", "severity": "warning", "message": "A1 may run out.", "sku": "A1"},
    ),
    ("cmd/prices/ack", {"cmd_id": "c-1", "outcome": "done", "result": {"applied": 3}}),
    ("cmd/prices/ack", {"cmd_id": "c-1", "outcome": "accepted", "duplicate": True}),
    (
        "cmd/x/ack",
        {"cmd_id": None, "outcome": "rejected", "reason": "malformed_json", "detail": "Bad."},
    ),
]


@pytest.mark.parametrize(("topic", "body"), GOOD, ids=[f"{t}-{i}" for i, (t, _) in enumerate(GOOD)])
def test_examples_validate(topic: str, body: dict[str, Any]) -> None:
    validate(topic, _STAMP.stamp(body))


def test_commands_validate() -> None:
    validate("cmd/ping", {"id": "p-1"})
    validate(
        "cmd/config",
        {"id": "2026-12-02T10:46:29Z.1", "action": "apply", "params": {}, "sig": "AAAA"},
    )
    assert errors("cmd/ping", {"id": "a b", "param": {}}) == [
        "$: Additional properties are not allowed ('param' was unexpected)",
        "$.id: 'a b' does not match '^[A-Za-z0-9._:-]{1,64}$'",
    ]


def test_unsynced_clock_envelope() -> None:
    stamper = Stamper("gw-1")
    stamper.clock_synced = False
    validate("status", stamper.stamp({"state": "offline"}))
    assert errors("status", {**_STAMP.stamp({"state": "offline"}), "clock_synced": True})


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("status", {"state": "online"}, "'version' is a required property"),
    ("status", {"state": "sleeping"}, "$.state"),
    (
        "telemetry",
        {
            "device": "m",
            "window": {"start": "yesterday", "end": "2026-12-02T10:46:00.000Z"},
            "metrics": {},
        },
        "$.window.start",
    ),
    (
        "telemetry",
        {
            "device": "m",
            "window": {"start": "2026-12-02T10:46:00.000Z", "end": "2026-12-02T10:46:00.000Z"},
            "metrics": {"p": {"unit": "W", "count": 1, "delta": 1}},
        },
        "$.metrics.p",
    ),
    (
        "events/sales",
        {
            "device": "t",
            "txn": "1",
            "sku": "A",
            "qty": "1",
            "price": 12.9,
            "amount": "12.90",
            "currency": "EUR",
        },
        "$.price",
    ),
    (
        "events/sales",
        {
            "device": "t",
            "txn": "1",
            "sku": "A",
            "qty": "1",
            "price": "12.90",
            "amount": "12.90",
            "currency": "eur",
        },
        "$.currency",
    ),
    (
        "events/sales",
        {
            "device": "t",
            "txn": 1,
            "sku": "A",
            "qty": "1",
            "price": "1",
            "amount": "1",
            "currency": "EUR",
        },
        "$.txn",
    ),
    (
        "metrics",
        {"uplink": {}, "extra": 1},
        "1 is not of type 'object'",
    ),  # a service section must be an object
    ("predictions", {"model": "m", "items": [{"sku": "A", "risk": 1.5}]}, "$.items[0].risk"),
    ("alerts", {"kind": "Stockout!", "severity": "warning", "message": "x"}, "$.kind"),
    ("cmd/p/ack", {"cmd_id": "c", "outcome": "rejected"}, "'reason' is a required property"),
    ("cmd/p/ack", {"cmd_id": "c", "outcome": "done"}, "'result' is a required property"),
    ("cmd/p/ack", {"cmd_id": "c", "outcome": "finished"}, "$.outcome"),
    (
        "cmd/p/ack",
        {"cmd_id": "c", "outcome": "done", "result": {}, "duplicate": False},
        "$.duplicate",
    ),
]


@pytest.mark.parametrize(
    ("topic", "body", "problem"), BAD, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BAD)]
)
def test_broken_examples_fail(topic: str, body: dict[str, Any], problem: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(problem)):
        validate(topic, _STAMP.stamp(body))


def test_envelope_is_required() -> None:
    found = errors("cmd/p/ack", {"cmd_id": None, "outcome": "accepted", "id": "not-a-ulid"})
    assert "$: 'ts' is a required property" in found
    assert "$: 'gw' is a required property" in found
    assert any(e.startswith("$.id:") for e in found)


def test_topics_map_to_one_channel() -> None:
    assert channel_for("cmd/prices").key == "command"
    assert channel_for("cmd/prices/ack").key == "commandAck"
    assert channel_for("events/sales").key == "sales"
    with pytest.raises(AssertionError):
        channel_for("cmd/a/b/ack")
