"""YAML syntax errors in words a technician understands, at the parser's own position.

libyaml and the pure-Python parser word the same problems differently; both map to the
same message here so the output does not depend on how PyYAML was built.
"""

from __future__ import annotations

import re

import yaml

from gateway.config.errors import ConfigIssue

_ALIAS = re.compile(r"\*([^\s,\[\]{}]+)")
_QUOTE_HINT = "put the value in quotes"

# (pattern on the parser's problem text, our message); the first match wins.
_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"mapping values are not allowed"),
        "unexpected ':' here: check the indentation, or " + _QUOTE_HINT + " if it contains ': '",
    ),
    (
        re.compile(r"expected <block end>|did not find expected key"),
        "bad indentation: this line does not line up with the keys above it",
    ),
    (
        re.compile(r"could not find expected ':'"),
        "expected 'key: value' here: a key needs a ':' after it",
    ),
    (
        re.compile(r"expected a single document|but found another document"),
        "more than one YAML document ('---'): a config file holds exactly one",
    ),
    (
        re.compile(r"cannot start any token"),
        "this character cannot start a value: " + _QUOTE_HINT,
    ),
    (
        re.compile(r"expected ',' or '\]'"),
        "a '[' list is not closed: expected ',' or ']'",
    ),
    (
        re.compile(r"expected ',' or '\}'"),
        "a '{' mapping is not closed: expected ',' or '}'",
    ),
    (
        re.compile(r"expected (the )?node content"),
        "a value is missing here (is a '[' or '{' left open?)",
    ),
    (
        re.compile(r"unknown escape"),
        "unknown backslash escape in double quotes: use single quotes for such text",
    ),
    (
        re.compile(r"found duplicate anchor"),
        "this anchor ('&name') is already defined above",
    ),
]


def issue_from_yaml_error(exc: yaml.YAMLError, text: str, source: str) -> ConfigIssue:
    """One ConfigIssue for a PyYAML/libyaml error (reader, scanner, parser or composer)."""
    if isinstance(exc, yaml.reader.ReaderError):
        line, col = _line_col(text, exc.position)
        char = exc.character
        code = ord(char) if isinstance(char, str) else char
        msg = f"character U+{code:04X} is not allowed in a YAML file"
        return ConfigIssue(source, line, col, "", msg)
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return ConfigIssue(source, 1, 1, "", f"not valid YAML: {exc}")
    mark = exc.problem_mark
    line, col = mark.line + 1, mark.column + 1
    tab = _first_indent_tab(text, line)
    if tab is not None:
        msg = "tab character in indentation: indent with spaces only"
        return ConfigIssue(source, *tab, "", msg)
    problem = exc.problem or ""
    context = exc.context or ""
    if "end of stream" in problem and "quoted scalar" in context and exc.context_mark:
        start = exc.context_mark
        return ConfigIssue(
            source, start.line + 1, start.column + 1, "", "this quote is never closed"
        )
    if "undefined alias" in problem:
        alias = _ALIAS.match(text.splitlines()[mark.line][mark.column :]) if text else None
        name = alias.group(1) if alias else "name"
        msg = f"the alias '*{name}' refers to no anchor '&{name}' defined above it"
        return ConfigIssue(source, line, col, "", msg)
    for pattern, message in _REWRITES:
        if pattern.search(problem) or pattern.search(context):
            return ConfigIssue(source, line, col, "", message)
    return ConfigIssue(source, line, col, "", f"not valid YAML: {problem or context}")


def _first_indent_tab(text: str, error_line: int) -> tuple[int, int] | None:
    """A tab in the indentation of the error's line or the one before it.

    Only those two: a tab inside an earlier block scalar (`|`) is legal text.
    """
    first = max(error_line - 2, 0)
    lines = text.splitlines()[first:error_line]
    for number, line in enumerate(lines, start=first + 1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            return number, indent.index("\t") + 1
    return None


def _line_col(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    line = before.count("\n") + 1
    return line, position - (before.rfind("\n") + 1) + 1
