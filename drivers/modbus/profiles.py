"""Device profiles: a meter model's register map shipped as YAML, loaded by name.

Profiles live in `drivers/modbus/profiles/<name>.yaml` (package data) and are validated by
the same `RegisterSpec` model as inline registers. A device config names a profile and may
add registers or replace some by name (`Profile.with_registers`).

Profile files get the house YAML rules (style.md §5): duplicate keys are errors, every
plain scalar reaches pydantic as its source text (so `0012` is never octal and `0x0156`
is parsed as hex only where an address is expected), and errors read FILE:LINE:COL.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING, Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivers.modbus.coalesce import MAX_REGISTERS
from drivers.modbus.registers import RegisterSpec

if TYPE_CHECKING:
    from collections.abc import Sequence

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULLS = {"", "~", "null", "Null", "NULL"}
Position = tuple[int, int]


class ProfileError(Exception):
    """A profile that cannot be used; `issues` holds one `FILE:LINE:COL: path: msg` each."""

    def __init__(self, issues: list[str]) -> None:
        super().__init__("\n".join(issues))
        self.issues = issues


class Profile(BaseModel):
    """One meter model: serial defaults and its register map."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    manufacturer: str = Field(min_length=1, description="Maker, as printed on the device.")
    model: str = Field(min_length=1, description="Model name, as printed on the device.")
    description: str = Field(default="", description="What the device is, for people.")
    source: str = Field(min_length=1, description="Where the register map comes from.")
    baudrate: int = Field(gt=0, description="Factory default baud rate.")
    parity: str = Field(pattern="^[NEO]$", description="Factory default parity: N, E or O.")
    stop_bits: int = Field(default=1, ge=1, le=2, description="Factory default stop bits.")
    unit_id: int = Field(ge=1, le=247, description="Factory default Modbus unit id.")
    max_registers: int | None = Field(
        default=None,
        ge=1,
        le=MAX_REGISTERS,
        description="Largest read the device accepts, when below the protocol's 125.",
    )
    max_gap: int | None = Field(
        default=None, ge=0, description="Most unused registers one read may span."
    )
    registers: tuple[RegisterSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        seen: set[str] = set()
        for spec in self.registers:
            if spec.name in seen:
                raise ValueError(f"register name {spec.name!r} appears twice")
            seen.add(spec.name)
        return self

    def with_registers(self, inline: Sequence[RegisterSpec]) -> Profile:
        """This profile with `inline` merged in: same name replaces, new names append."""
        return self.model_copy(update={"registers": merge_registers(self.registers, inline)})


def merge_registers(
    base: Sequence[RegisterSpec], inline: Sequence[RegisterSpec]
) -> tuple[RegisterSpec, ...]:
    """Merge by name: an inline spec replaces the base spec of that name, or is appended."""
    merged = {spec.name: spec for spec in base}
    for spec in inline:
        merged[spec.name] = spec
    return tuple(merged.values())


def available_profiles() -> list[str]:
    """Names of the shipped profiles, sorted."""
    folder = resources.files("drivers.modbus") / "profiles"
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


def load_profile(name: str) -> Profile:
    """Load and validate the shipped profile `name` (e.g. `eastron_sdm630`)."""
    names = available_profiles()
    if not _NAME.match(name) or name not in names:
        raise ProfileError([f"unknown profile {name!r}; shipped: {', '.join(names)}"])
    path = resources.files("drivers.modbus") / "profiles" / f"{name}.yaml"
    return parse_profile(path.read_text(encoding="utf-8"), f"profiles/{name}.yaml")


def parse_profile(text: str, source: str) -> Profile:
    """Validate a profile from YAML `text`; `source` names the file in error messages."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ProfileError([f"{source}:{line}:{col}: {exc.problem or exc}"]) from None
    if node is None:
        raise ProfileError([f"{source}:1:1: the file is empty"])
    positions: dict[tuple[str | int, ...], Position] = {}
    issues: list[tuple[Position, str]] = []
    data = _plain(node, (), positions, issues)
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            issues.append((_position(loc, positions), f"{_dotted(loc)}{message}"))
    if not issues:
        return profile
    issues.sort()
    raise ProfileError([f"{source}:{line}:{col}: {msg}" for (line, col), msg in issues])


def _plain(
    node: yaml.Node,
    path: tuple[str | int, ...],
    positions: dict[tuple[str | int, ...], Position],
    issues: list[tuple[Position, str]],
) -> Any:
    """Turn a composed YAML node into dicts, lists and source-text scalars."""
    positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            here = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in first:
                issues.append(
                    (here, f"{_dotted((*path, key))}duplicate key (first on line {first[key]})")
                )
                continue
            first[key] = here[0]
            out[key] = _plain(value_node, (*path, key), positions, issues)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*path, i), positions, issues) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.ScalarNode) and node.style is None and node.value in _NULLS:
        return None
    return node.value


def _position(
    loc: tuple[str | int, ...], positions: dict[tuple[str | int, ...], Position]
) -> Position:
    """Position of the deepest recorded prefix of a pydantic error location."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in positions:
            return positions[loc[:end]]
    return (1, 1)


def _dotted(loc: tuple[str | int, ...]) -> str:
    """`registers[3].address: ` from a location tuple (empty for the root)."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return f"{text}: " if text else ""
