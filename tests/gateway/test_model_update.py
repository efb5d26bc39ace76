"""`P/cmd/model`: signed installs (one piece and in parts), rollback, and every refusal.

A bad model never replaces a good one: each refusal test also checks that the live model
is still the one before. Acks are validated against docs/asyncapi.yaml by the env.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.stockout import N_FEATURES
from tests.gateway.inference_env import (
    InferenceEnv,
    b64,
    card_for,
    install,
    install_parts,
    shipped,
    sign,
    tiny_model,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from gateway.inference import InferenceService

ACK = "cmd/model/ack"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[InferenceEnv]:
    e = InferenceEnv(tmp_path, part_timeout=0.3)
    yield e
    await e.stop()


async def final_ack(env: InferenceEnv, cmd_id: str) -> dict[str, Any]:
    """The final (done/rejected) ack of `cmd_id`, waiting for it."""
    while True:
        acks = await env.messages.wait_for(ACK, len(env.messages.on(ACK)) or 1)
        for ack in acks:
            if ack["cmd_id"] == cmd_id and ack["outcome"] != "accepted":
                return ack
        await env.messages.wait_for(ACK, len(acks) + 1)


def live(service: InferenceService) -> str:
    assert service.models.current is not None
    return service.models.current.card.label


async def test_good_model_installs_and_rollback_restores_the_previous(env: InferenceEnv) -> None:
    service = await env.start()
    assert live(service) == "stockout 1.1.0"
    model = tiny_model()
    await env.command(install("m-1", model, card_for(model), env.key))
    ack = await final_ack(env, "m-1")
    assert [a["outcome"] for a in env.messages.on(ACK)] == ["accepted", "done"]
    assert ack["result"]["installed"]["model"] == "tiny 0.1.0"
    assert ack["result"]["previous"]["origin"] == "shipped"
    assert live(service) == "tiny 0.1.0"
    sha = hashlib.sha256(model).hexdigest()
    assert (env.tmp / "state" / "models" / f"{sha}.onnx").read_bytes() == model
    await service.run_round()
    assert env.messages.on("predictions")[-1]["model"] == "tiny 0.1.0"

    # The installed model survives a restart ...
    service = await env.start()
    assert live(service) == "tiny 0.1.0"
    # ... and rollback brings back the shipped one, also across a restart.
    await env.command({"id": "r-1", "action": "rollback"})
    ack = await final_ack(env, "r-1")
    assert ack["outcome"] == "done" and ack["result"]["installed"]["model"] == "stockout 1.1.0"
    assert live(service) == "stockout 1.1.0"
    service = await env.start()
    assert live(service) == "stockout 1.1.0"
    assert service.models.previous is not None
    assert service.models.previous.origin == "installed"


async def test_a_large_model_arrives_in_parts(env: InferenceEnv) -> None:
    service = await env.start()
    small = tiny_model()
    await env.command(install("m-1", small, card_for(small), env.key))
    await final_ack(env, "m-1")
    data, card = shipped()  # 107 KB of ONNX: 143 KB of base64, over the 120 KB limit
    parts = install_parts("m-2", data, card, env.key)
    assert len(parts) == 2
    for part in parts:
        await env.command(part)
    ack = await final_ack(env, "m-2")
    outcomes = [a["outcome"] for a in env.messages.on(ACK) if a["cmd_id"] == "m-2"]
    assert outcomes == ["accepted", "done"], ack
    assert live(service) == "stockout 1.1.0"

    # The whole command re-sent: one duplicate ack (on the last part), no work done again.
    for part in parts:
        await env.command(part)
    assert env.messages.on(ACK)[-1] == {**ack, "duplicate": True}
    assert len([a for a in env.messages.on(ACK) if a["cmd_id"] == "m-2"]) == 3


async def test_missing_part_is_rejected_as_incomplete(env: InferenceEnv) -> None:
    service = await env.start()
    data, card = shipped()
    first, _ = install_parts("m-3", data, card, env.key)
    await env.command(first)
    ack = await final_ack(env, "m-3")
    assert ack["reason"] == "incomplete" and "2" in ack["detail"]
    assert live(service) == "stockout 1.1.0"


async def test_damaged_part_fails_the_sha256_of_the_whole(env: InferenceEnv) -> None:
    await env.start()
    model = tiny_model(bias=0.9)
    parts = install_parts("m-4", model, card_for(model), env.key, chunk=400)
    chunk = parts[0]["params"]["chunk"]
    parts[0]["params"]["chunk"] = chunk[:-2] + ("AA" if chunk[-2:] != "AA" else "BB")
    for part in parts:
        await env.command(part)
    assert (await final_ack(env, "m-4"))["reason"] == "sha256_mismatch"


def _signed(cmd_id: str, model: bytes, card: bytes, key: Ed25519PrivateKey) -> dict[str, Any]:
    return install(cmd_id, model, card, key)


async def test_refusals_keep_the_live_model(env: InferenceEnv) -> None:
    service = await env.start()
    good = tiny_model()
    good_card = card_for(good)
    narrow = tiny_model(n_features=N_FEATURES - 1)
    wrong_ref = json.loads(good_card)
    wrong_ref["reference"]["probabilities"][0] = [0.5, 0.5]
    renamed = json.loads(good_card)
    renamed["feature_names"][3] = "source"
    tampered = install("t-1", good, good_card, env.key)
    tampered["params"]["model"] = b64(good[:-1] + bytes([good[-1] ^ 1]))
    cases: list[tuple[dict[str, Any], str]] = [
        (tampered, "bad_signature"),  # bytes changed after signing
        (_signed("t-2", good[:-1] + bytes([good[-1] ^ 1]), good_card, env.key), "sha256_mismatch"),
        (_signed("t-3", good, good_card, Ed25519PrivateKey.generate()), "bad_signature"),
        ({"id": "t-4", "action": "install", "params": {"model": b64(good), "card": b64(good_card)}}, "missing_signature"),
        (_signed("t-5", narrow, card_for(narrow), env.key), "input_mismatch"),
        (_signed("t-6", good, json.dumps(wrong_ref).encode(), env.key), "reference_mismatch"),
        (_signed("t-7", good, json.dumps(renamed).encode(), env.key), "feature_mismatch"),
        (_signed("t-8", b"not onnx", card_for(b"not onnx"), env.key), "load_failed"),
        (_signed("t-9", good, b"{", env.key), "bad_card"),
        (sign({"id": "t-10", "action": "install", "params": {"model": "!!"}}, env.key), "invalid_value"),
        ({"id": "t-11", "action": "rollback"}, "no_previous_model"),
    ]  # fmt: skip
    for cmd, reason in cases:
        await env.command(cmd)
        ack = await final_ack(env, cmd["id"])
        assert (ack["outcome"], ack["reason"]) == ("rejected", reason), ack
        assert ack["detail"]
        assert live(service) == "stockout 1.1.0"
    assert "bad_card" in service.stats()["last_refusal"]  # the last one that reached the checks


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"part": {"of": "other", "n": 1, "total": 2}}, "invalid_value"),
        ({"part": {"of": "p-1", "n": 3, "total": 2}}, "invalid_value"),
        ({"part": {"of": "p-1", "n": True, "total": 2}}, "invalid_value"),
        ({"params": {"chunk": "x", "more": 1}}, "invalid_value"),
        ({"sha256": "ABC"}, "invalid_value"),
        ({"extra": 1}, "invalid_value"),
    ],
)
async def test_malformed_parts_are_refused(
    env: InferenceEnv, change: dict[str, Any], reason: str
) -> None:
    await env.start()
    part = {"id": "p-1", "action": "install", "part": {"of": "p-1", "n": 1, "total": 2}}
    await env.command({**part, "params": {"chunk": "x"}, **change})
    ack = await final_ack(env, "p-1")
    assert (ack["outcome"], ack["reason"]) == ("rejected", reason)


async def test_parts_that_disagree_drop_the_command(env: InferenceEnv) -> None:
    await env.start()
    base = {"id": "p-2", "action": "install", "params": {"chunk": "{}"}}
    await env.command({**base, "part": {"of": "p-2", "n": 1, "total": 3}})
    await env.command({**base, "part": {"of": "p-2", "n": 2, "total": 2}})
    ack = await final_ack(env, "p-2")
    assert ack["reason"] == "invalid_value" and "disagrees" in ack["detail"]
    # Dropped at once: no later "incomplete" for it.
    assert env.router is not None and "p-2" not in str(env.router._parts._entries)


async def test_duplicate_command_id_does_no_work_again(env: InferenceEnv) -> None:
    service = await env.start()
    model = tiny_model()
    cmd = install("m-5", model, card_for(model), env.key)
    await env.command(cmd)
    first = await final_ack(env, "m-5")
    await env.command({"id": "r-5", "action": "rollback"})
    await final_ack(env, "r-5")
    assert live(service) == "stockout 1.1.0"
    await env.command(cmd)  # a retrying cloud: the original result, no re-install
    assert env.messages.on(ACK)[-1] == {**first, "duplicate": True}
    assert live(service) == "stockout 1.1.0"


async def test_unusable_models_at_start(env: InferenceEnv, tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"garbage")
    broken.with_suffix(".json").write_bytes(card_for(b"garbage"))
    service = await env.start(f"  model: '{broken}'\n")
    assert service.models.current is None
    stats = service.stats()
    assert stats["state"] == "no_model" and "load_failed" in stats["last_refusal"]
    assert await service.run_round() is None
    assert service.counts["skipped_rounds"] == 1
    assert env.messages.on("predictions") == []

    # An installed model damaged on disk: the configured (here shipped) one takes over.
    service = await env.start()
    model = tiny_model()
    await env.command(install("m-6", model, card_for(model), env.key))
    await final_ack(env, "m-6")
    installed = env.tmp / "state" / "models" / f"{hashlib.sha256(model).hexdigest()}.onnx"
    installed.write_bytes(b"bit rot")
    service = await env.start()
    assert live(service) == "stockout 1.1.0"
    assert "sha256_mismatch" in service.stats()["last_refusal"]
