"""Secrets: a masked value type, and `<name>_file` keys that read a secret from a file.

A secret never shows in repr, str, logs or `model_dump`: it prints as `********` and only
`.get()` returns it. Each Secret field `x` may instead be given as `x_file` (a path, read
at load, one trailing newline stripped), so the config file itself can be shared. Inline
secrets are allowed in a local file but recorded, because a config pushed from the cloud
must not carry them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from pydantic_core import core_schema

from gateway.config.errors import KeyPath, dotted
from gateway.config.fields import model_in

if TYPE_CHECKING:
    from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler
    from pydantic.json_schema import JsonSchemaValue

    from gateway.config.loader import Document

MASK = "********"
FILE_SUFFIX = "_file"


class Secret:
    """A string that is masked everywhere except `.get()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The secret itself."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        # Compared by value so a reload notices a changed password.
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        from_text = core_schema.no_info_after_validator_function(cls, core_schema.str_schema())
        return core_schema.union_schema(
            [core_schema.is_instance_schema(cls), from_text],
            serialization=core_schema.plain_serializer_function_ser_schema(lambda _: MASK),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "password", "writeOnly": True}


def is_secret(annotation: Any) -> bool:
    """Whether a field holds a Secret (`Secret` or `Secret | None`)."""
    return annotation is Secret or Secret in get_args(annotation)


def read_secret_files(
    doc: Document, model: type[BaseModel], raw: Any, path: KeyPath, base_dir: Path
) -> list[str]:
    """Replace `x_file` by the file's content under `x`, in place; return inline secret paths.

    Problems (unreadable file, both `x` and `x_file`) are reported on `doc`.
    """
    if not isinstance(raw, dict):
        return []
    inline: list[str] = []
    for name, secret, sub in _secret_plan(model):
        value = raw.get(name)
        if secret:
            inline += _one_secret(doc, raw, name, (*path, name), base_dir)
        elif sub is None:
            continue
        elif isinstance(value, list):
            for i, item in enumerate(value):
                inline += read_secret_files(doc, sub, item, (*path, name, i), base_dir)
        elif isinstance(value, dict):
            inline += read_secret_files(doc, sub, value, (*path, name), base_dir)
    return inline


@functools.cache
def _secret_plan(model: type[BaseModel]) -> tuple[tuple[str, bool, type[BaseModel] | None], ...]:
    """(field, holds a secret, sub-model holding secrets) for fields that lead to a secret.

    Cached per model: a catalog of 10,000 SKUs must not re-inspect the SKU model each time.
    """
    plan: list[tuple[str, bool, type[BaseModel] | None]] = []
    for name, info in model.model_fields.items():
        if is_secret(info.annotation):
            plan.append((name, True, None))
            continue
        sub = model_in(info.annotation)
        if sub is not None and sub is not model and _secret_plan(sub):
            plan.append((name, False, sub))
    return tuple(plan)


def _one_secret(
    doc: Document, raw: dict[str, Any], name: str, path: KeyPath, base: Path
) -> list[str]:
    file_key = name + FILE_SUFFIX
    file_path = (*path[:-1], file_key)
    if file_key not in raw or raw[file_key] is None:
        if raw.get(name) is not None and path not in doc.from_env:
            return [dotted(path)]
        return []
    if raw.get(name) is not None:
        doc.report(file_path, f"give either '{name}' or '{file_key}', not both", at_key=True)
        return []
    given = raw[file_key]
    if not isinstance(given, str):
        doc.report(file_path, "expected the path of a file")
        return []
    target = Path(given) if Path(given).is_absolute() else base / given
    try:
        content = target.read_text(encoding="utf-8")
    except OSError as exc:
        doc.report(file_path, f"cannot read '{given}': {exc.strerror or exc}", at_key=True)
        return []
    except UnicodeDecodeError:
        doc.report(file_path, f"cannot read '{given}': not UTF-8 text", at_key=True)
        return []
    content = content.removesuffix("\n").removesuffix("\r")
    if not content:
        doc.report(file_path, f"'{given}' is empty", at_key=True)
        return []
    raw[name] = content
    doc.values[path] = doc.position(file_path)
    return []
