"""YAML text → plain data with the position of every key and value (style.md §5).

We compose the node tree with the safe loader and walk it ourselves, because
`yaml.safe_load` silently lets a duplicate key win, turns `sku: 012345` into 5349 (octal)
and `on` into True. Here every plain scalar stays its source text, so the schema decides:
pydantic's lax mode parses `"0012"` as 12 for an int field and keeps it for a str field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from gateway.config.errors import ConfigError, ConfigIssue, KeyPath, dotted
from gateway.config.yaml_errors import issue_from_yaml_error

if TYPE_CHECKING:
    from collections.abc import Mapping

try:  # libyaml is several times faster; the pure-Python loader behaves the same for us
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader  # type: ignore[assignment]

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STD_TAG_PREFIX = "tag:yaml.org,2002:"
_MAX_NODES = 200_000  # aliases can expand exponentially ("billion laughs")
_MAX_DEPTH = 64
_VARIABLE = re.compile(r"\$\$\{|\$\{(?P<name>[^}]*)(?P<close>\})?")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(slots=True)
class Document:
    """Plain data (dict/list/str/None) plus where each piece came from."""

    source: str
    data: Any = None
    values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    # Scalars that were exactly one `${VAR}`: a secret given that way is not inline.
    from_env: set[KeyPath] = field(default_factory=set)
    # Paths already reported by the loader; validation errors under them are repeats.
    reported: set[KeyPath] = field(default_factory=set)
    issues: list[ConfigIssue] = field(default_factory=list)

    def position(self, path: KeyPath) -> tuple[int, int]:
        """Where the value at `path` starts, else its nearest known ancestor; else 1:1."""
        for end in range(len(path), -1, -1):
            pos = self.values.get(path[:end])
            if pos is not None:
                return pos
        return (1, 1)

    def key_position(self, path: KeyPath) -> tuple[int, int]:
        """Where the key naming `path` is written (falls back to `position`)."""
        return self.keys.get(path) or self.position(path)

    def issue(self, path: KeyPath, message: str, *, at_key: bool = False) -> ConfigIssue:
        """Build an issue located at `path` in this document."""
        line, col = self.key_position(path) if at_key else self.position(path)
        return ConfigIssue(self.source, line, col, dotted(path), message)

    def report(self, path: KeyPath, message: str, *, at_key: bool = False) -> None:
        """Record a problem found while reading the document."""
        self.issues.append(self.issue(path, message, at_key=at_key))
        self.reported.add(path)


def read_document(text: str, source: str, env: Mapping[str, str]) -> Document:
    """Compose `text` and walk it; raise ConfigError when it is not YAML at all."""
    doc = Document(source)
    try:
        root = yaml.compose(text, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([issue_from_yaml_error(exc, text, source)]) from None
    except RecursionError:
        issue = ConfigIssue(source, 1, 1, "", "the file is nested too deeply")
        raise ConfigError([issue]) from None
    if root is None:
        msg = "the file is empty: it needs at least a 'gateway:' section"
        raise ConfigError([ConfigIssue(source, 1, 1, "", msg)])
    walker = _Walker(doc, env)
    doc.data = walker.walk(root, ())
    return doc


class _Walker:
    """One pass over the node tree; collects issues instead of stopping at the first."""

    def __init__(self, doc: Document, env: Mapping[str, str]) -> None:
        self.doc = doc
        self.env = env
        self.count = 0
        self.stack: set[int] = set()

    def walk(self, node: yaml.Node, path: KeyPath) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise ConfigError(
                [self.doc.issue(path, f"the document expands to more than {_MAX_NODES} values")]
            )
        self.doc.values.setdefault(path, _pos(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self.stack:
            self.doc.report(path, "an alias refers to the mapping or list that contains it")
            return None
        if len(path) > _MAX_DEPTH:
            self.doc.report(path, f"nested more than {_MAX_DEPTH} levels deep")
            return None
        self.stack.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path)
        finally:
            self.stack.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or (
                not key_node.style and key_node.tag == _NULL_TAG
            ):
                self._issue_at(key_node, path, "a key must be plain text")
                continue
            key = str(key_node.value)
            key_path = (*path, key)
            if key in first_line:
                msg = f"duplicate key '{key}' (first at line {first_line[key]})"
                self._issue_at(key_node, key_path, msg)
                continue
            first_line[key] = key_node.start_mark.line + 1
            self.doc.keys.setdefault(key_path, _pos(key_node))
            out[key] = self.walk(value_node, key_path)
        # YAML merge keys (`<<: *defaults`): keys written here win over merged ones.
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for src in sources:
                if not isinstance(src, yaml.MappingNode) or id(src) in self.stack:
                    self.doc.report(path, "'<<' merges only other mappings (e.g. '<<: *defaults')")
                    continue
                self.stack.add(id(src))
                try:
                    merged = self._mapping(src, path)
                finally:
                    self.stack.discard(id(src))
                for key, value in merged.items():
                    out.setdefault(key, value)
        return out

    def _issue_at(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        line, col = _pos(node)
        self.doc.issues.append(ConfigIssue(self.doc.source, line, col, dotted(path), message))

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> str | None:
        # Plain style is None from PyYAML and "" from libyaml.
        if not node.style and node.tag == _NULL_TAG:
            return None  # plain `null`, `~` or nothing at all
        if not node.tag.startswith(_STD_TAG_PREFIX):
            self.doc.report(path, f"unsupported YAML tag '{node.tag}'")
            return None
        return self._substitute(str(node.value), path)

    def _substitute(self, text: str, path: KeyPath) -> str:
        """Replace `${VAR}` from the environment; `$${` is a literal `${`."""
        if "$" not in text:
            return text
        problems: list[str] = []

        def replace(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            name = m.group("name")
            if m.group("close") is None:
                problems.append("'${' is not closed with '}' (write '$${' for a literal '${')")
            elif not _VARIABLE_NAME.fullmatch(name):
                problems.append(f"'${{{name}}}' is not a valid environment variable name")
            elif name not in self.env:
                problems.append(f"environment variable '{name}' is not set")
            else:
                return self.env[name]
            return m.group(0)

        out = _VARIABLE.sub(replace, text)
        for problem in problems:
            self.doc.report(path, problem)
        if not problems and _VARIABLE.fullmatch(text) and text != "$${":
            self.doc.from_env.add(path)
        return out


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1
