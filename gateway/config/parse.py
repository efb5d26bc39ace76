"""From a file or text to a validated `Config`, or a ConfigError listing every problem.

Each section, and each device against its own driver's model, is validated separately so
that every problem in the file is reported at once, at its position, without pydantic's
union tags in the paths. Nothing but ConfigError ever leaves `load_config`.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from gateway.config.checks import cross_checks
from gateway.config.errors import ConfigError, ConfigIssue
from gateway.config.fields import model_in
from gateway.config.loader import Document, read_document
from gateway.config.messages import got, issues_from, suggest, unknown_key
from gateway.config.model import Config
from gateway.config.secrets import read_secret_files

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from gateway.driver import DriverConfig
    from gateway.plugins import Registry

log = logging.getLogger(__name__)

# Sections that mean "no feature" when absent, rather than "defaults".
# Absent means "off" for these (None), rather than "defaults".
_OPTIONAL_SECTIONS = {"mqtt", "inference"}


def load_config(path: Path, registry: Registry, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at `path`."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigIssue(source, 1, 1, "", f"cannot read: {reason}")]) from None
    except UnicodeDecodeError as exc:
        raw = path.read_bytes()[: exc.start]
        line = raw.count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n") + 1) + 1
        msg = "not UTF-8 text (save the file as UTF-8)"
        raise ConfigError([ConfigIssue(source, line, col, "", msg)]) from None
    return parse_config(text, source, registry, base_dir=path.parent.absolute(), env=env)


def parse_config(
    text: str,
    source: str,
    registry: Registry,
    *,
    base_dir: Path,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Validate config `text`; `source` names it in errors, `base_dir` anchors relative paths."""
    try:
        return _parse(text, source, registry, base_dir, os.environ if env is None else env)
    except ConfigError:
        raise
    except Exception as exc:  # a bug here must still read as a config problem, not a traceback
        log.debug("Unexpected error while validating %s", source, exc_info=True)
        msg = f"internal error while validating: {type(exc).__name__}: {exc}"
        raise ConfigError([ConfigIssue(source, 1, 1, "", msg)]) from exc


def _parse(
    text: str, source: str, registry: Registry, base_dir: Path, env: Mapping[str, str]
) -> Config:
    doc = read_document(text, source, env)
    if not isinstance(doc.data, dict):
        msg = "expected a mapping (key: value lines), starting with 'gateway:'"
        raise ConfigError([*doc.issues, doc.issue((), msg)])
    data: dict[str, Any] = doc.data
    sections_allowed = list(Config.model_fields)
    issues: list[ConfigIssue] = [
        doc.issue((key,), unknown_key(key, sections_allowed), at_key=True)
        for key in data
        if key not in sections_allowed
    ]
    inline = _secret_files(doc, registry, base_dir)
    context: dict[str, Any] = {"base_dir": base_dir}
    sections: dict[str, Any] = {}
    for name, field in Config.model_fields.items():
        model = model_in(field.annotation)
        if name == "devices" or model is None:
            continue
        if name not in data:
            if field.is_required():
                issues.append(doc.issue((), f"missing required section '{name}'"))
            elif name not in _OPTIONAL_SECTIONS:
                sections[name] = model.model_validate({}, context=context)
            continue
        raw = {} if data[name] is None else data[name]
        sections[name] = _validate(model, raw, (name,), doc, context, issues)
        if name == "gateway" and sections[name] is not None:
            gateway = sections[name]
            context.update(store=gateway.store, gateway=gateway.id, state_dir=gateway.state_dir)
    devices = _devices(doc, registry, context, issues)
    issues += cross_checks(doc)
    issues += doc.issues
    if issues:
        raise ConfigError(issues)
    try:
        config = Config.model_validate({**sections, "devices": devices}, context=context)
    except ValidationError as exc:
        raise ConfigError(issues_from(exc, doc, Config)) from None
    config._inline_secrets = inline
    return config


def _validate(
    model: type[BaseModel],
    raw: Any,
    path: tuple[str | int, ...],
    doc: Document,
    context: dict[str, Any],
    issues: list[ConfigIssue],
) -> Any:
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        issues += issues_from(exc, doc, model, path)
        return None


def _devices(
    doc: Document, registry: Registry, context: dict[str, Any], issues: list[ConfigIssue]
) -> list[DriverConfig]:
    """Validate each device against the model of the driver it names."""
    raw = doc.data.get("devices")
    if raw is None:
        return []
    if not isinstance(raw, list):
        msg = f"expected a list (lines starting with '- '), got {got(raw)}"
        issues.append(doc.issue(("devices",), msg))
        return []
    installed = registry.names()
    devices = []
    for i, item in enumerate(raw):
        path = ("devices", i)
        if not isinstance(item, dict):
            msg = f"expected a mapping (key: value lines), got {got(item)}"
            issues.append(doc.issue(path, msg))
            continue
        name = item.get("driver")
        if name is None:
            msg = f"missing required key 'driver' (installed: {', '.join(installed) or 'none'})"
            issues.append(doc.issue(path, msg))
            continue
        driver = registry.drivers.get(name) if isinstance(name, str) else None
        if driver is None:
            issues.append(doc.issue((*path, "driver"), _unknown_driver(name, registry)))
            continue
        device = _validate(driver.Config, item, path, doc, context, issues)
        if device is not None:
            devices.append(device)
    return devices


def _unknown_driver(name: Any, registry: Registry) -> str:
    if not isinstance(name, str):
        return "expected a driver name"
    if name in registry.errors:
        return f"driver '{name}' is installed but failed to load: {registry.errors[name]}"
    installed = registry.names()
    close = suggest(name, installed, "")
    hint = close + " " if close.startswith("; did") else "; "
    return f"unknown driver '{name}'{hint}installed: {', '.join(installed) or 'none'}"


def _secret_files(doc: Document, registry: Registry, base_dir: Path) -> list[str]:
    """Read every `<secret>_file` in the sections and devices; return inline secret paths."""
    data: dict[str, Any] = doc.data
    inline: list[str] = []
    for name, field in Config.model_fields.items():
        model = model_in(field.annotation)
        if model is not None and name != "devices" and name in data:
            inline += read_secret_files(doc, model, data[name], (name,), base_dir)
    devices = data.get("devices")
    for i, item in enumerate(devices if isinstance(devices, list) else []):
        named = item.get("driver") if isinstance(item, dict) else None
        driver = registry.drivers.get(named) if isinstance(named, str) else None
        if driver is not None:
            inline += read_secret_files(doc, driver.Config, item, ("devices", i), base_dir)
    return inline
