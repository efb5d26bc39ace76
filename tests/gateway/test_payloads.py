"""Payloads over 120 KB in parts (contract.md): every part fits, the whole comes back."""

from __future__ import annotations

import hashlib
import json

from gateway.payloads import PART_LIMIT, Stamper, encode, in_parts


def test_parts_fit_even_when_every_character_needs_escaping() -> None:
    stamper = Stamper("gw-1")
    # Quotes, backslashes and non-ASCII double (or more) in size once inside `data`.
    nasty = ['"\\\\"é€\n' * 20 for _ in range(2000)]
    whole = stamper.stamp({"cmd_id": "c-1", "outcome": "done", "result": {"items": nasty}})
    assert len(encode(whole)) > PART_LIMIT
    parts = [stamper.stamp(p) for p in in_parts(whole, keep=("cmd_id", "outcome", "absent"))]
    assert len(parts) > 2
    assert all(len(encode(p)) <= PART_LIMIT for p in parts)
    assert [p["part"] for p in parts] == [
        {"of": whole["id"], "n": n, "total": len(parts)} for n in range(1, len(parts) + 1)
    ]
    assert all(p["cmd_id"] == "c-1" and p["outcome"] == "done" and "absent" not in p for p in parts)
    assert len({p["id"] for p in parts} | {whole["id"]}) == len(parts) + 1  # own ids
    text = "".join(p["data"] for p in parts)
    assert text.isascii()
    assert hashlib.sha256(text.encode()).hexdigest() == parts[0]["sha256"]
    assert json.loads(text) == whole
