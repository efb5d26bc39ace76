"""The stockout model's card as the runtime needs it, parsed and checked (pure Python).

The card (`models/stockout.json`, written by `tools/stockout`) states the feature names and
order, the ONNX input and output, the threshold, the horizon, the model's SHA-256 and a
reference vector with its stored outputs. The runtime refuses a model whose card does not
describe the features `gateway.stockout.build_features` produces (issue 7, "Checks at load").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ModelRefused(Exception):  # noqa: N818 - a refusal, reported as an ack reason
    """A model or card failed a check; `reason` is the ack's code, `detail` a sentence."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What the runtime reads from a model card."""

    name: str
    version: str
    horizon_h: float
    threshold: float
    feature_names: tuple[str, ...]
    input_name: str
    input_type: str
    output_name: str
    output_type: str
    positive_column: int
    sha256: str
    reference_input: list[list[float]]
    reference_output: list[list[float]]
    tolerance: float

    @property
    def label(self) -> str:
        """`name version`, as shown in predictions and status."""
        return f"{self.name} {self.version}"

    @classmethod
    def parse(cls, data: bytes) -> ModelCard:
        """Parse a card's JSON; refuses (`bad_card`) anything missing or of the wrong type."""
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ModelRefused("bad_card", f"The model card is not JSON: {exc}.") from None
        if not isinstance(raw, dict):
            raise ModelRefused("bad_card", "The model card must be a JSON object.")
        try:
            return cls._from(raw)
        except (KeyError, TypeError, ValueError) as exc:
            detail = f"The model card lacks or mistypes a field ({type(exc).__name__}: {exc})."
            raise ModelRefused("bad_card", detail) from None

    @classmethod
    def _from(cls, raw: dict[str, Any]) -> ModelCard:
        names = raw["feature_names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TypeError("feature_names must be a list of strings")
        reference = raw["reference"]
        ref_in, ref_out = reference["input"], reference["probabilities"]
        if not _matrix(ref_in, len(names)) or not _matrix(ref_out, None):
            raise ValueError("reference.input/probabilities must be non-empty number matrices")
        if len(ref_in) != len(ref_out):
            raise ValueError("reference.input and reference.probabilities differ in rows")
        sha = str(raw["sha256"])
        if not _SHA256.fullmatch(sha):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        threshold = float(raw["threshold"])
        horizon = float(raw["horizon_h"])
        if not (0.0 < threshold < 1.0 and horizon > 0.0):
            raise ValueError("threshold must be in (0, 1) and horizon_h positive")
        return cls(
            name=str(raw["name"]),
            version=str(raw["version"]),
            horizon_h=horizon,
            threshold=threshold,
            feature_names=tuple(names),
            input_name=str(raw["input"]["name"]),
            input_type=str(raw["input"]["type"]),
            output_name=str(raw["output"]["name"]),
            output_type=str(raw["output"]["type"]),
            positive_column=int(raw["output"]["positive_column"]),
            sha256=sha,
            reference_input=ref_in,
            reference_output=ref_out,
            tolerance=float(reference.get("tolerance", 1e-5)),
        )

    def check_features(self, expected: tuple[str, ...]) -> None:
        """Refuse a card whose features are not the ones the runtime builds, in order."""
        if self.feature_names == expected:
            return
        if len(self.feature_names) != len(expected):
            detail = (
                f"The card lists {len(self.feature_names)} features; this gateway builds "
                f"{len(expected)}."
            )
        else:
            pairs = zip(self.feature_names, expected, strict=True)
            pos = next(i for i, (a, b) in enumerate(pairs) if a != b)
            detail = (
                f"Feature {pos} is {self.feature_names[pos]!r} in the card but "
                f"{expected[pos]!r} on this gateway."
            )
        raise ModelRefused("feature_mismatch", detail)


def _matrix(value: Any, width: int | None) -> bool:
    if not isinstance(value, list) or not value:
        return False
    for row in value:
        if not isinstance(row, list) or not row or (width is not None and len(row) != width):
            return False
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in row):
            return False
    return True
