"""pydantic validation errors → ConfigIssues in a technician's words, at the right position."""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any

from gateway.config.errors import ConfigIssue, KeyPath, dotted
from gateway.config.fields import NAME_PATTERN, model_at
from gateway.driver import DEVICE_ID_PATTERN

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError
    from pydantic_core import ErrorDetails

    from gateway.config.loader import Document

_MAX_LISTED_KEYS = 12
_PATTERN_WORDS = {
    DEVICE_ID_PATTERN: "an id starts with a letter or digit, then letters, digits, '_', '.' "
    "or '-' (1-64 characters)",
    NAME_PATTERN: "use 1-64 letters, digits, '_', '.' or '-'",
    r"^[A-Z]{3}$": "use an ISO 4217 code in capitals, e.g. EUR",
}
_QUOTED = re.compile(r"'([^']*)'")


def issues_from(
    exc: ValidationError, doc: Document, model: type[BaseModel], prefix: KeyPath = ()
) -> list[ConfigIssue]:
    """Translate every error of `exc` (raised validating `model` at `prefix`)."""
    issues = []
    for err in exc.errors(include_url=False):
        path, on_key = _clean_path(doc.data, prefix, err["loc"])
        if any(path[:n] in doc.reported for n in range(len(path) + 1)):
            continue  # the loader already reported this value (unset variable, ...)
        kind = err["type"]
        if kind == "missing":
            line, col = doc.position(path[:-1])
            msg = f"missing required key '{path[-1]}'"
            issues.append(ConfigIssue(doc.source, line, col, dotted(path[:-1]), msg))
        elif kind == "extra_forbidden":
            owner = model_at(model, path[len(prefix) : -1])
            allowed = list(owner.model_fields) if owner is not None else []
            issues.append(doc.issue(path, unknown_key(str(path[-1]), allowed), at_key=True))
        else:
            issues.append(doc.issue(path, describe(err), at_key=on_key))
    return issues


def unknown_key(key: str, allowed: list[str]) -> str:
    """`unknown key 'baudrat'; did you mean 'baudrate'?` (or the allowed keys, if few)."""
    return f"unknown key '{key}'" + suggest(key, allowed, "allowed keys")


def suggest(word: str, choices: list[str], listing: str) -> str:
    """`; did you mean 'x'?` for a near miss, else `; <listing>: a, b` for a short list."""
    close = difflib.get_close_matches(word, choices, n=1)
    if close:
        return f"; did you mean '{close[0]}'?"
    if choices and len(choices) <= _MAX_LISTED_KEYS:
        return f"; {listing}: {', '.join(choices)}"
    return ""


def describe(err: ErrorDetails) -> str:
    """pydantic's message, reworded where a technician would not understand it."""
    kind, value, ctx = err["type"], err["input"], err.get("ctx") or {}
    shown = got(value)
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return f"expected a whole number, got {shown}"
    if kind in {"float_parsing", "float_type"}:
        return f"expected a number, got {shown}"
    if kind in {"bool_parsing", "bool_type"}:
        return f"expected true or false, got {shown}"
    if kind in {"literal_error", "enum"}:
        options = _QUOTED.findall(str(ctx.get("expected", ""))) or [str(ctx.get("expected"))]
        return f"expected one of: {', '.join(options)}; got {shown}"
    if kind in {"model_type", "model_attributes_type", "dict_type", "mapping_type"}:
        return f"expected a mapping (key: value lines), got {shown}"
    if kind in {"list_type", "tuple_type", "set_type", "iterable_type"}:
        return f"expected a list (lines starting with '- '), got {shown}"
    if kind in {"string_type", "path_type"}:
        return f"expected text, got {shown}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return f"{shown} is not allowed: " + _PATTERN_WORDS.get(pattern, f"it must match {pattern}")
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        bound = next(iter(ctx.values()), "?")
        words = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }
        return f"must be {words[kind]} {bound}, got {shown}"
    if kind in {"string_too_short", "too_short"}:
        return "must not be empty" if ctx.get("min_length") == 1 else err["msg"].lower()
    if kind in {"value_error", "assertion_error"}:
        error = ctx.get("error")
        return str(error) if error is not None else err["msg"]
    return err["msg"][:1].lower() + err["msg"][1:]


def got(value: Any) -> str:
    """How a wrong value is shown: `'abc'`, `a list`, `a mapping`, `nothing`."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"'{value}'"


def _clean_path(data: Any, prefix: KeyPath, loc: tuple[int | str, ...]) -> tuple[KeyPath, bool]:
    """pydantic's `loc` as a path in the document: union tags and '[key]' markers dropped."""
    current = data
    for key in prefix:
        current = _child(current, key)
    path = list(prefix)
    on_key = False
    for i, key in enumerate(loc):
        if key == "[key]":
            on_key = True  # a dict key failed validation: point at the key itself
            continue
        child = _child(current, key)
        if child is not _ABSENT:
            path.append(key)
            current = child
        elif i == len(loc) - 1 and isinstance(key, str):
            path.append(key)  # a missing key, or an unknown key pydantic reports by name
        # anything else is a union tag or a validator's name, not a place in the file
    return tuple(path), on_key


_ABSENT = object()


def _child(node: Any, key: int | str) -> Any:
    if isinstance(node, dict) and isinstance(key, str) and key in node:
        return node[key]
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return _ABSENT
