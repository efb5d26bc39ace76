"""Field types shared by the section models: paths, names, and unit types for mypy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema

    from gateway.config.errors import KeyPath

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_NAME = re.compile(NAME_PATTERN)


class As:
    """Annotated metadata that validates with another type: `Annotated[float, As(duration())]`.

    `duration()` and `size()` build their types at run time, which mypy cannot read as a
    type; this keeps the static type (float, int) visible and the checks intact.
    """

    __slots__ = ("target",)

    def __init__(self, target: Any) -> None:
        self.target = target

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return handler.generate_schema(self.target)


def base_dir(info: ValidationInfo) -> Path | None:
    """The config file's directory, passed by the loader in the validation context."""
    context = info.context if isinstance(info.context, dict) else {}
    value = context.get("base_dir")
    return value if isinstance(value, Path) else None


def _resolve(value: Path, info: ValidationInfo) -> Path:
    # Relative paths are relative to the config file, not to the daemon's cwd (contract.md).
    root = base_dir(info)
    return value if value.is_absolute() or root is None else root / value


def _existing(value: Path, info: ValidationInfo) -> Path:
    resolved = _resolve(value, info)
    if not resolved.is_file():
        raise ValueError(f"no such file: '{value}'")
    return resolved


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        msg = f"'{value}' is not a valid name: use 1-64 letters, digits, '_', '.' or '-'"
        raise ValueError(msg)
    return value


ConfigPath = Annotated[Path, AfterValidator(_resolve)]
"""A path; relative ones resolve against the config file's directory."""

ExistingFile = Annotated[Path, AfterValidator(_existing)]
"""A path to a file that must exist when the config is loaded."""

Name = Annotated[str, AfterValidator(_name), Field(json_schema_extra={"pattern": NAME_PATTERN})]
"""A store or gateway name: 1-64 letters, digits, '_', '.' or '-'."""


def context_value(info: ValidationInfo, key: str) -> Any:
    """A value the loader put in the validation context, or None."""
    context = info.context if isinstance(info.context, dict) else {}
    return context.get(key)


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside `annotation`: `X`, `X | None`, `list[X]`, `dict[str, X]`, `Annotated`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = model_in(arg)
        if found is not None:
            return found
    return None


def model_at(model: type[BaseModel], path: KeyPath) -> type[BaseModel] | None:
    """The model that validates the mapping at `path` (relative to `model`), if any."""
    current: type[BaseModel] | None = model
    for key in path:
        if current is None:
            return None
        if isinstance(key, int):
            continue  # a list index: the item model is the one found at the list's key
        field = current.model_fields.get(key)
        if field is None:
            return None
        current = model_in(field.annotation)
    return current
