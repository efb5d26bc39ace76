"""A small world for the inference service: config, pipeline, state store, router, sink.

Every message the service sends and every ack the router emits is stamped as the daemon
stamps it and validated against docs/asyncapi.yaml, so each test also checks the contract.
Models for the update tests are built with `onnx` (a test dependency): a tiny softmax over
the 19 features, whose card is the shipped card with its own hash and reference outputs.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.aggregate import Aggregator
from gateway.catalog import Catalog
from gateway.command_parts import split_params
from gateway.command_rules import canonical
from gateway.commands import CommandRouter
from gateway.config import parse_config
from gateway.inference import InferenceService
from gateway.payloads import Stamper
from gateway.pipeline import Pipeline
from gateway.plugins import Registry
from gateway.services import Service, ServiceContext
from gateway.state import StateStore
from gateway.stockout import N_FEATURES
from tests.contract_schema import validate

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.estimates import ShelfEstimate
    from gateway.supervisor import Supervisor

ROOT_MODELS = Path(__file__).resolve().parents[2] / "models"
NOW = 1_717_405_200.0  # Monday 2024-06-03 09:00 UTC


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Messages:
    """Collects (topic, body) sent by the service or the router; validates each one."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.arrived = asyncio.Event()
        self._stamper = Stamper("gw-1")

    def _take(self, topic: str, body: dict[str, Any]) -> None:
        stamped = self._stamper.stamp(body)
        validate(topic, stamped)
        assert len(json.dumps(stamped).encode()) < 120_000, f"{topic} payload over 120 KB"
        self.items.append((topic, body))
        self.arrived.set()

    async def send(
        self, topic: str, body: dict[str, Any], cls: str, ts: float | None = None
    ) -> None:
        """Sink API."""
        self._take(topic, body)

    async def drain(self) -> None:
        """Sink API."""

    async def ack(self, topic: str, body: dict[str, Any]) -> None:
        """The router's send_ack."""
        self._take(topic, body)

    def on(self, topic: str) -> list[dict[str, Any]]:
        """Bodies sent on `topic`, in order."""
        return [b for t, b in self.items if t == topic]

    async def wait_for(self, topic: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until `count` messages arrived on `topic`."""
        async with asyncio.timeout(timeout):
            while len(self.on(topic)) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.on(topic)


@dataclass
class FakeInventory:
    """Stands in for the inventory service (`estimates()` is all inference uses)."""

    table: dict[str, ShelfEstimate] = field(default_factory=dict)

    def estimates(self) -> Mapping[str, ShelfEstimate]:
        """The current estimates."""
        return dict(self.table)


def config_text(state_dir: Path, inference: str, skus: str, *, keys: list[str]) -> str:
    """A config with a catalog and an inference section (YAML text)."""
    key_list = ", ".join(f"'{k}'" for k in keys)
    return (
        f"gateway: {{store: s1, id: gw-1, state_dir: '{state_dir}'}}\n"
        f"catalog:\n  skus:\n{skus}"
        f"commands: {{public_keys: [{key_list}]}}\n"
        f"inference:\n{inference}"
    )


DEFAULT_SKUS = (
    "    - {sku: A1, name: Milk, shelf_capacity: 10}\n"
    "    - {sku: B2, name: Bread, shelf_capacity: 6}\n"
    "    - {sku: C3, name: Cheese}\n"
)


class InferenceEnv:
    """Builds InferenceService instances on one state directory (so restarts can be tested)."""

    def __init__(self, tmp: Path, *, part_timeout: float = 60.0) -> None:
        self.tmp = tmp
        self.clock = Clock()
        self.messages = Messages()
        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key = base64.b64encode(raw).decode()
        self.part_timeout = part_timeout
        self.inventory: FakeInventory | None = None
        self.router: CommandRouter | None = None
        self.states: StateStore | None = None
        self.services: list[InferenceService] = []

    async def start(
        self, inference: str = "  interval: 15m\n", skus: str = DEFAULT_SKUS
    ) -> InferenceService:
        """A new service (and router, state store) as a daemon start would make them."""
        await self.stop()
        text = config_text(self.tmp / "state", inference, skus, keys=[self.public_key])
        config = parse_config(text, "test.yaml", Registry(), base_dir=self.tmp)
        assert config.inference is not None
        self.states = StateStore(self.tmp / "state" / "state.sqlite")
        self.states.open()
        self.router = CommandRouter(
            send_ack=self.messages.ack,
            store_path=self.tmp / "state" / "commands.sqlite",
            max_size=config.commands.max_size,
            remember=config.commands.remember,
            public_keys=config.commands.public_keys,
            require_signature=False,
            part_timeout=self.part_timeout,
            clock=self.clock,
        )
        await self.router.open()
        catalog = Catalog.from_config(config.catalog)
        pipeline = Pipeline(asyncio.Queue(10), self.messages, catalog, Aggregator(60.0, {}))
        services: dict[str, Service] = {}
        ctx = ServiceContext(
            config=config,
            sink=self.messages,
            router=self.router,
            pipeline=pipeline,
            states=self.states,
            supervisor=cast("Supervisor", None),  # inference never touches devices
            catalog=lambda: catalog,
            status=dict,
            stamper=Stamper("gw-1"),
            ready=asyncio.Event(),
            core_alive=lambda: True,
            services=services,
        )
        if self.inventory is not None:
            services["inventory"] = cast("Service", self.inventory)
        service = InferenceService(ctx, config.inference, wall=self.clock, utc_offset=lambda _: 0.0)
        services["inference"] = service
        await service.open()
        self.pipeline = pipeline
        self.services.append(service)
        return service

    async def stop(self) -> None:
        """Close the service, save the states, close the router (a clean shutdown)."""
        for service in self.services:
            await service.close()
        self.services.clear()
        if self.states is not None:
            await self.states.save()
            self.states.close()
            self.states = None
        if self.router is not None:
            await self.router.close()
            self.router = None

    async def command(self, payload: dict[str, Any]) -> None:
        """Deliver one command message to the router as the uplink would."""
        assert self.router is not None
        await self.router.dispatch("model", json.dumps(payload).encode())


def b64(data: bytes) -> str:
    """Base64 text."""
    return base64.b64encode(data).decode()


def sign(cmd: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The command with its Ed25519 `sig` over the canonical JSON."""
    return {**cmd, "sig": b64(key.sign(canonical(cmd)))}


def install(cmd_id: str, model: bytes, card: bytes, key: Ed25519PrivateKey) -> dict[str, Any]:
    """A signed one-piece `install` command."""
    params = {"model": b64(model), "card": b64(card)}
    return sign({"id": cmd_id, "action": "install", "params": params}, key)


def install_parts(
    cmd_id: str, model: bytes, card: bytes, key: Ed25519PrivateKey, chunk: int = 100_000
) -> list[dict[str, Any]]:
    """The same command cut into parts (sha256 and sig on the last part)."""
    whole = install(cmd_id, model, card, key)
    chunks, digest = split_params(whole["params"], chunk)
    parts = []
    for n, text in enumerate(chunks, 1):
        part: dict[str, Any] = {
            "id": cmd_id,
            "action": "install",
            "part": {"of": cmd_id, "n": n, "total": len(chunks)},
            "params": {"chunk": text},
        }
        if n == len(chunks):
            part |= {"sha256": digest, "sig": whole["sig"]}
        parts.append(part)
    return parts


def shipped() -> tuple[bytes, bytes]:
    """The repo's model and card."""
    return (ROOT_MODELS / "stockout.onnx").read_bytes(), (
        ROOT_MODELS / "stockout.json"
    ).read_bytes()


def tiny_model(n_features: int = N_FEATURES, bias: float = 0.5) -> bytes:
    """A small valid ONNX classifier: softmax(x W + b), input 'features', output 'probabilities'."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    weights = rng.normal(0.0, 0.05, (n_features, 2)).astype(np.float32)
    b = np.array([bias, -bias], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "W"], ["z0"]),
            helper.make_node("Add", ["z0", "b"], ["z"]),
            helper.make_node("Softmax", ["z"], ["probabilities"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data: bytes = model.SerializeToString()
    return data


def card_for(model: bytes, *, version: str = "0.1.0", **changes: Any) -> bytes:
    """The shipped card rewritten for `model`: its hash and its own reference outputs."""
    import hashlib

    import onnxruntime as ort

    card = json.loads(shipped()[1])
    card["name"], card["version"] = "tiny", version
    card["sha256"] = hashlib.sha256(model).hexdigest()
    x = np.asarray(card["reference"]["input"], dtype=np.float32)
    try:
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        card["reference"]["probabilities"] = session.run(["probabilities"], {"features": x})[
            0
        ].tolist()
    except Exception:  # a deliberately broken model keeps the shipped outputs
        pass
    card.update(changes)
    return json.dumps(card).encode()
