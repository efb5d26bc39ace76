"""The command router: every malformed command gets its rejected ack; work is done once.

Every ack the router emits is stamped as the daemon stamps it and validated against
docs/asyncapi.yaml by the `Acks` collector, so each test also checks the contract.
Over 400 lines because it is one table of cases per rule of the contract; splitting it
would scatter the fixtures that every case shares.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from gateway.command_rules import canonical, check_fields, read_id, read_object
from gateway.commands import Command, CommandRejected, CommandRouter, ping_handler
from gateway.payloads import Stamper
from tests.contract_schema import validate

if TYPE_CHECKING:
    from pathlib import Path


class Acks:
    """Collects acks as the daemon's send_ack would receive them; validates each one."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self._arrived = asyncio.Event()
        self._stamper = Stamper("gw-1")

    async def __call__(self, topic: str, body: dict[str, Any]) -> None:
        validate(topic, self._stamper.stamp(body))
        self.items.append((topic, body))
        self._arrived.set()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.items) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return [body for _, body in self.items]

    @property
    def last(self) -> dict[str, Any]:
        return self.items[-1][1]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def private_key() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return key, base64.b64encode(raw).decode()


def signed(cmd: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    return {**cmd, "sig": base64.b64encode(key.sign(canonical(cmd))).decode()}


def enc(obj: Any) -> bytes:
    return json.dumps(obj).encode()


MakeRouter = Callable[..., CommandRouter]


@pytest.fixture
def acks() -> Acks:
    return Acks()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make_router(tmp_path: Path, acks: Acks, clock: Clock) -> AsyncIterator[MakeRouter]:
    made: list[CommandRouter] = []

    def make(**kw: Any) -> CommandRouter:
        options: dict[str, Any] = {
            "send_ack": acks,
            "store_path": tmp_path / "commands.sqlite",
            "max_size": 1024,
            "remember": 3600.0,
            "public_keys": [],
            "require_signature": False,
            "clock": clock,
        }
        options.update(kw)
        router = CommandRouter(**options)
        router.register("ping", ping_handler(lambda: {"state": "ok", "devices": 2}))
        made.append(router)
        return router

    yield make
    for router in made:
        await router.close()


@pytest.fixture
async def router(make_router: MakeRouter) -> CommandRouter:
    r = make_router()
    await r.open()
    return r


@pytest.mark.parametrize(
    ("payload", "reason", "cmd_id"),
    [
        (b'{"id": "a1", ', "malformed_json", None),
        (b"\xff\xfe\x00garbage", "malformed_json", None),
        (b'["id", "a1"]', "not_an_object", None),
        (b'"a1"', "not_an_object", None),
        (b'{"params": {}}', "missing_field", None),
        (b'{"id": ""}', "invalid_value", None),
        (b'{"id": "has space"}', "invalid_value", None),
        (b'{"id": "a/b"}', "invalid_value", None),
        (enc({"id": "x" * 65}), "invalid_value", None),
        (b'{"id": 12}', "invalid_value", None),
        (b'{"id": "p1", "action": "now"}', "unknown_action", "p1"),
        (b'{"id": "p1", "params": [1]}', "invalid_value", "p1"),
        (b'{"id": "p1", "param": {}}', "invalid_value", "p1"),
        (b'{"id": "p1", "part": {"of": "p1", "n": 1, "total": 2}}', "invalid_value", "p1"),
    ],
)
async def test_malformed_command_gets_its_rejected_ack(
    router: CommandRouter, acks: Acks, payload: bytes, reason: str, cmd_id: str | None
) -> None:
    await router.dispatch("ping", payload)
    assert acks.items == [("cmd/ping/ack", acks.last)]
    assert acks.last["outcome"] == "rejected"
    assert acks.last["reason"] == reason
    assert acks.last["cmd_id"] == cmd_id
    assert acks.last["detail"]
    assert router.stats()["rejected"] == {reason: 1}


async def test_unknown_command_is_acked_on_its_own_topic(router: CommandRouter, acks: Acks) -> None:
    await router.dispatch("nope", b'{"id": "n1"}')
    topic, body = acks.items[0]
    assert topic == "cmd/nope/ack"
    assert body["reason"] == "unknown_command"
    assert "ping" in body["detail"]


@pytest.mark.parametrize("name", ["a/b", "+", "#", "x" * 33, "", "x\u00e9"])
async def test_unusable_name_gets_no_ack_topic(
    router: CommandRouter, acks: Acks, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    await router.dispatch(name, b'{"id": "n1"}')
    await router.dispatch(name, b'{"id": "n2"}')
    assert acks.items == []
    assert router.stats()["ignored_names"] == 2
    assert len([r for r in caplog.records if "unusable name" in r.message]) == 1


@pytest.mark.parametrize(
    ("prefix", "cmd_id"), [(b'{"id": "big-1", "params": ', "big-1"), (b'{"params": ', None)]
)
async def test_too_large(
    router: CommandRouter, acks: Acks, prefix: bytes, cmd_id: str | None
) -> None:
    payload = prefix + enc({"blob": "x" * 2000}) + b"}"
    await router.dispatch("ping", payload)
    assert acks.last["reason"] == "too_large"
    assert acks.last["cmd_id"] == cmd_id
    assert "1024" in acks.last["detail"]


async def test_ping_answers_with_the_summary(router: CommandRouter, acks: Acks) -> None:
    await router.dispatch("ping", b'{"id": "p1"}')
    (body,) = await acks.wait_for(1)
    assert body == {"cmd_id": "p1", "outcome": "done", "result": {"state": "ok", "devices": 2}}
    assert router.stats()["done"] == 1


async def test_duplicate_resends_the_stored_ack(
    make_router: MakeRouter, acks: Acks, clock: Clock
) -> None:
    calls: list[str] = []

    async def price(cmd: Command) -> dict[str, Any]:
        calls.append(cmd.id)
        if "sku" not in cmd.params:
            raise CommandRejected("missing_field", "'params.sku' is required.")
        return {"applied": cmd.params["sku"]}

    def build() -> CommandRouter:
        r = make_router()
        r.register("prices", price)
        return r

    router = build()
    await router.open()
    await router.dispatch("prices", b'{"id": "c1", "params": {"sku": "A"}}')
    await router.dispatch("prices", b'{"id": "c2", "params": {}}')
    first, second = await acks.wait_for(2)
    assert first["result"] == {"applied": "A"}
    assert second["reason"] == "missing_field"
    await router.dispatch("prices", b'{"id": "c1", "params": {"sku": "A"}}')
    assert acks.last == {**first, "duplicate": True}
    assert router.stats()["duplicates"] == 1

    # Across a restart of the router on the same store file.
    await router.close()
    router = build()
    await router.open()
    await router.dispatch("prices", b'{"id": "c2", "params": {}}')
    assert acks.last == {**second, "duplicate": True}
    assert calls == ["c1", "c2"]

    # Same id under another command name: another command.
    await router.dispatch("ping", b'{"id": "c1"}')
    assert (await acks.wait_for(5))[-1]["outcome"] == "done"

    # After the remembered window the id is forgotten (and pruned on the next open).
    clock.now += 3601
    await router.dispatch("prices", b'{"id": "c1", "params": {"sku": "A"}}')
    assert "duplicate" not in (await acks.wait_for(6))[-1]
    assert calls == ["c1", "c2", "c1"]


async def test_refusals_before_work_are_not_remembered(router: CommandRouter, acks: Acks) -> None:
    await router.dispatch("ping", b'{"id": "p1", "param": {}}')
    await router.dispatch("ping", b'{"id": "p1"}')
    bodies = await acks.wait_for(2)
    assert [b["outcome"] for b in bodies] == ["rejected", "done"]
    assert "duplicate" not in bodies[1]


async def test_actions(router: CommandRouter, acks: Acks) -> None:
    async def device(cmd: Command) -> dict[str, Any]:
        return {"did": cmd.action}

    router.register("device", device, actions=["restart", "disable"])
    await router.dispatch("device", b'{"id": "d1", "params": {"device": "m1"}}')
    assert acks.last["reason"] == "missing_field"
    assert "disable, restart" in acks.last["detail"]
    await router.dispatch("device", b'{"id": "d2", "action": "explode"}')
    assert acks.last["reason"] == "unknown_action"
    await router.dispatch("device", b'{"id": "d3", "action": "restart"}')
    assert (await acks.wait_for(3))[-1]["result"] == {"did": "restart"}


async def test_signatures(make_router: MakeRouter, acks: Acks) -> None:
    old, old_pub = private_key()
    new, new_pub = private_key()
    router = make_router(public_keys=[old_pub, new_pub], require_signature=False)
    await router.open()
    cases: list[tuple[dict[str, Any], str]] = [
        (signed({"id": "s1", "params": {"a": "\u00e9"}}, new), "done"),
        ({**signed({"id": "s2", "params": {"a": 1}}, old), "params": {"a": 2}}, "bad_signature"),
        ({"id": "s3", "sig": "not base64!"}, "bad_signature"),
        ({"id": "s4", "sig": 5}, "bad_signature"),
        ({"id": "s5"}, "done"),  # unsigned is fine when signing is not required
    ]
    for cmd, expected in cases:
        await router.dispatch("ping", enc(cmd))
        body = acks.last if expected != "done" else (await acks.wait_for(len(acks.items) + 1))[-1]
        assert body["cmd_id"] == cmd["id"]
        assert body.get("reason", "done") == expected, body


async def test_signature_required(make_router: MakeRouter, acks: Acks) -> None:
    key, pub = private_key()
    router = make_router(public_keys=[pub], require_signature=True)
    await router.open()
    await router.dispatch("ping", b'{"id": "r1"}')
    assert acks.last["reason"] == "missing_signature"
    await router.dispatch("ping", enc(signed({"id": "r1"}, key)))
    assert (await acks.wait_for(2))[-1]["outcome"] == "done"
    # An unsigned re-send must not obtain the stored result.
    await router.dispatch("ping", b'{"id": "r1"}')
    assert acks.last["reason"] == "missing_signature"


async def test_signed_but_no_keys_configured(router: CommandRouter, acks: Acks) -> None:
    key, _ = private_key()
    await router.dispatch("ping", enc(signed({"id": "k1"}, key)))
    assert acks.last["reason"] == "bad_signature"
    assert "public_keys" in acks.last["detail"]


def test_bad_public_key_is_refused(tmp_path: Path, acks: Acks) -> None:
    with pytest.raises(ValueError, match=r"public_keys\[1\]"):
        CommandRouter(
            send_ack=acks,
            store_path=tmp_path / "c.sqlite",
            max_size=1024,
            remember=60,
            public_keys=[private_key()[1], base64.b64encode(b"short").decode()],
            require_signature=False,
        )


async def test_failing_handler_is_internal_error(
    router: CommandRouter, acks: Acks, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(cmd: Command) -> dict[str, Any]:
        raise KeyError("boom")

    async def wrong(cmd: Command) -> Any:
        return [1]

    router.register("broken", broken)
    router.register("wrong", wrong)
    with caplog.at_level(logging.ERROR, logger="gateway.commands"):
        await router.dispatch("broken", b'{"id": "b1"}')
        await router.dispatch("wrong", b'{"id": "w1"}')
        first, second = await acks.wait_for(2)
    assert first["reason"] == "internal_error"
    assert "KeyError" in first["detail"]
    assert second["reason"] == "internal_error"
    assert len([r for r in caplog.records if r.exc_info]) == 1
    await router.dispatch("ping", b'{"id": "p9"}')  # the router still works
    assert (await acks.wait_for(3))[-1]["outcome"] == "done"


async def test_slow_handler_accepts_then_finishes(router: CommandRouter, acks: Acks) -> None:
    release = asyncio.Event()

    async def slow(cmd: Command) -> dict[str, Any]:
        await cmd.accept()
        await cmd.accept()  # a second call sends nothing
        await release.wait()
        return {"installed": True}

    router.register("model", slow)
    await router.dispatch("model", b'{"id": "m1"}')
    (accepted,) = await acks.wait_for(1)
    assert accepted == {"cmd_id": "m1", "outcome": "accepted"}
    assert any(t.get_name() == "cmd:model:m1" for t in asyncio.all_tasks())
    await router.dispatch("model", b'{"id": "m1"}')  # re-sent while running
    assert acks.last == {"cmd_id": "m1", "outcome": "accepted", "duplicate": True}
    release.set()
    bodies = await acks.wait_for(3)
    assert bodies[2] == {"cmd_id": "m1", "outcome": "done", "result": {"installed": True}}
    assert router.stats() | {"rejected": None} == {
        "received": 2,
        "accepted": 1,
        "done": 1,
        "rejected": None,
        "duplicates": 1,
        "running": 0,
        "ignored_names": 0,
        "ack_failures": 0,
    }


async def test_bounded_handlers_and_close_cancels(make_router: MakeRouter, acks: Acks) -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def hang(cmd: Command) -> dict[str, Any]:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.append(cmd.id)
        return {}

    router = make_router(max_running=1)
    router.register("hang", hang)
    await router.open()
    await router.dispatch("hang", b'{"id": "h1"}')
    async with asyncio.timeout(5):
        await started.wait()
    await router.dispatch("hang", b'{"id": "h2"}')
    assert acks.last["reason"] == "busy"
    await router.close()
    assert cancelled == ["h1"]
    assert len(acks.items) == 1  # no final ack for work cut short
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("cmd:")]
    await router.dispatch("hang", b'{"id": "h3"}')  # closed: dropped, no crash
    assert len(acks.items) == 1


async def test_failing_send_ack_never_raises(make_router: MakeRouter) -> None:
    async def refuse(topic: str, body: dict[str, Any]) -> None:
        raise OSError("disk full")

    router = make_router(send_ack=refuse)
    await router.open()
    await router.dispatch("ping", b"not json")
    assert router.stats()["ack_failures"] == 1


async def test_corrupt_store_is_moved_aside(
    tmp_path: Path, make_router: MakeRouter, acks: Acks
) -> None:
    (tmp_path / "commands.sqlite").write_bytes(b"this is not a database" * 100)
    router = make_router()
    await router.open()
    await router.dispatch("ping", b'{"id": "p1"}')
    assert (await acks.wait_for(1))[0]["outcome"] == "done"
    assert len(list(tmp_path.glob("commands.sqlite.corrupt-*"))) == 1


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def test_deep_nesting_is_malformed_json() -> None:
    with pytest.raises(CommandRejected) as caught:
        read_object(b"[" * 100_000 + b"]" * 100_000, 1_000_000)
    assert caught.value.reason == "malformed_json"


_PARSE_REASONS = {
    "too_large",
    "malformed_json",
    "not_an_object",
    "missing_field",
    "invalid_value",
    "unknown_action",
}


@given(st.binary(max_size=200) | _json.map(lambda v: json.dumps(v).encode()))
def test_parsing_refuses_only_with_a_reason(payload: bytes) -> None:
    refusal: CommandRejected | None = None
    try:
        raw = read_object(payload, 150)
        read_id(raw)
        check_fields("x", raw, frozenset({"a"}))
    except CommandRejected as exc:
        refusal = exc
    if refusal is not None:
        assert refusal.reason in _PARSE_REASONS
        assert refusal.detail
