"""Stockout models at run time: verify and load one (ONNX), and keep installed ones on disk.

`load_model` is blocking (run it in a worker thread): it checks the card against the
runtime's features, the bytes against the card's SHA-256, the ONNX graph's input and output
against the card, and that the card's reference vector scores to its stored outputs. Any
failure is a `ModelRefused` with a stable reason; nothing half-loaded ever escapes.

On disk (`<state_dir>/models/`): installed models as `<sha256>.onnx` + `<sha256>.json`, and
`active.json` naming the current and the previous model (either may be the shipped or the
configured one). Files are written to a temporary name, fsynced and renamed, so a power cut
leaves the old or the new state, never a torn one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gateway.model_card import ModelCard, ModelRefused
from gateway.stockout import FEATURE_NAMES

if TYPE_CHECKING:
    import numpy.typing as npt

log = logging.getLogger(__name__)

SHIPPED = "shipped"
CONFIGURED = "configured"
INSTALLED = "installed"


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where a model's bytes live: the shipped package data, a configured path, or installed."""

    origin: str  # SHIPPED, CONFIGURED or INSTALLED
    model: str | None = None  # file path; None for the shipped model
    card: str | None = None

    def read(self) -> tuple[bytes, bytes]:
        """(model bytes, card bytes)."""
        if self.model is None or self.card is None:
            # The wheel carries the shipped model as package data (contract.md, packaging).
            base = resources.files("gateway") / "data" / "models"
            return (base / "stockout.onnx").read_bytes(), (base / "stockout.json").read_bytes()
        return Path(self.model).read_bytes(), Path(self.card).read_bytes()

    def as_dict(self) -> dict[str, Any]:
        """For active.json and status."""
        return {"origin": self.origin, "model": self.model, "card": self.card}

    @classmethod
    def configured(cls, path: Path | None) -> ModelSource:
        """The model the config names (its card beside it, `.json`), else the shipped one."""
        if path is None:
            return cls(SHIPPED)
        return cls(CONFIGURED, str(path), str(path.with_suffix(".json")))


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A verified model, ready to score feature matrices."""

    card: ModelCard
    source: ModelSource
    session: Any  # onnxruntime.InferenceSession (imported lazily: contract.md, memory)
    size: int

    def score(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The positive-class probability per row (blocking: call from a worker thread)."""
        out = self.session.run([self.card.output_name], {self.card.input_name: x})[0]
        risk: npt.NDArray[np.float32] = np.asarray(out, dtype=np.float32)[
            :, self.card.positive_column
        ]
        return risk

    def describe(self) -> dict[str, Any]:
        """For status and ack results."""
        return {
            "model": self.card.label,
            "sha256": self.card.sha256,
            "origin": self.source.origin,
            "threshold": self.card.threshold,
            "horizon_h": self.card.horizon_h,
        }


def _session(data: bytes) -> Any:
    import onnxruntime as ort  # noqa: PLC0415 - only when inference is enabled (contract.md)

    opts = ort.SessionOptions()
    # One thread: a round must not starve the event loop's core on a 4-core Pi (stockout.md).
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
        detail = f"onnxruntime cannot load the model: {str(exc)[:200]}"
        raise ModelRefused("load_failed", detail) from None


def _check_graph(session: Any, card: ModelCard) -> None:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelRefused("input_mismatch", f"The model has {len(inputs)} inputs, not 1.")
    inp = inputs[0]
    width = inp.shape[-1] if inp.shape else None
    if inp.name != card.input_name or inp.type != card.input_type:
        detail = (
            f"The model's input is {inp.name!r} of {inp.type}; the card says "
            f"{card.input_name!r} of {card.input_type}."
        )
        raise ModelRefused("input_mismatch", detail)
    if len(inp.shape) != 2 or width != len(card.feature_names):
        detail = (
            f"The model's input shape is {inp.shape}; {len(card.feature_names)} features "
            "per row are expected."
        )
        raise ModelRefused("input_mismatch", detail)
    outputs = {o.name: o.type for o in session.get_outputs()}
    if outputs.get(card.output_name) != card.output_type:
        detail = (
            f"The model has no output {card.output_name!r} of {card.output_type} "
            f"(it has {outputs})."
        )
        raise ModelRefused("output_mismatch", detail)


def _check_reference(model: LoadedModel) -> None:
    card = model.card
    x = np.asarray(card.reference_input, dtype=np.float32)
    expected = np.asarray(card.reference_output, dtype=np.float64)
    try:
        got = model.session.run([card.output_name], {card.input_name: x})[0]
        got = np.asarray(got, dtype=np.float64)
    except Exception as exc:  # a graph that loads may still fail to run
        detail = f"The model fails on the reference vector: {str(exc)[:200]}"
        raise ModelRefused("reference_mismatch", detail) from None
    if got.shape != expected.shape:
        detail = f"The reference vector scores to shape {got.shape}, the card has {expected.shape}."
        raise ModelRefused("reference_mismatch", detail)
    worst = float(np.max(np.abs(got - expected)))
    if not worst <= card.tolerance:
        detail = (
            f"The reference vector scores up to {worst:.3g} away from the card's outputs "
            f"(tolerance {card.tolerance:g})."
        )
        raise ModelRefused("reference_mismatch", detail)


def load_model(
    data: bytes, card_data: bytes, source: ModelSource, *, horizon_h: float | None = None
) -> LoadedModel:
    """Verify and load a model (blocking); raises `ModelRefused` with the first failed check."""
    card = ModelCard.parse(card_data)
    card.check_features(FEATURE_NAMES)
    digest = hashlib.sha256(data).hexdigest()
    if digest != card.sha256:
        detail = f"The model's SHA-256 is {digest[:12]}..., the card says {card.sha256[:12]}...."
        raise ModelRefused("sha256_mismatch", detail)
    if horizon_h is not None and abs(card.horizon_h - horizon_h) > 1e-6:
        detail = (
            f"The model looks {card.horizon_h:g} h ahead; inference.horizon is {horizon_h:g} h."
        )
        raise ModelRefused("horizon_mismatch", detail)
    session = _session(data)
    _check_graph(session, card)
    model = LoadedModel(card, source, session, len(data))
    _check_reference(model)
    return model


class ModelFiles:
    """Installed models and the active/previous choice in `<state_dir>/models/`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._active = directory / "active.json"

    def active(self) -> tuple[ModelSource | None, ModelSource | None]:
        """(current, previous) from active.json; (None, None) when nothing was installed."""
        try:
            raw = json.loads(self._active.read_bytes())
            return _source(raw.get("current")), _source(raw.get("previous"))
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.error("Ignoring unreadable %s (%s); using the configured model", self._active, exc)
            return None, None

    def save(self, data: bytes, card_data: bytes, sha256: str) -> ModelSource:
        """Write an installed model and its card (blocking); returns its source."""
        self.directory.mkdir(parents=True, exist_ok=True)
        model, card = self.directory / f"{sha256}.onnx", self.directory / f"{sha256}.json"
        _write_atomic(model, data)
        _write_atomic(card, card_data)
        return ModelSource(INSTALLED, str(model), str(card))

    def set_active(self, current: ModelSource, previous: ModelSource | None) -> None:
        """Record the choice atomically, then delete installed files neither one uses."""
        body = {"current": current.as_dict(), "previous": previous and previous.as_dict()}
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(self._active, json.dumps(body, indent=1).encode())
        keep = {p for s in (current, previous) if s for p in (s.model, s.card) if p}
        for path in self.directory.glob("*"):
            if path.suffix in {".onnx", ".json"} and path != self._active and str(path) not in keep:
                path.unlink(missing_ok=True)


def _source(raw: Any) -> ModelSource | None:
    if raw is None:
        return None
    return ModelSource(str(raw["origin"]), raw.get("model"), raw.get("card"))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut only once the dir is synced
    finally:
        os.close(dir_fd)
