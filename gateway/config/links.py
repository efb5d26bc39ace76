"""The `links:` section: serial ports and TCP endpoints shared by several devices.

A link is one physical channel with one scheduler (contract.md "Config"): an RS-485 bus
behind a USB adapter (`path`), or a TCP endpoint such as a serial server or a Modbus TCP
gateway (`url`). Devices name it with `link:`; the gateway owns the port, so restarting
one device never closes it.

The section is a list, validated as a whole (`LinksConfig`); unknown keys in an entry are
reported at the entry with a "did you mean" hint, and `link_references` reports every
device whose `link:` names no declared link, at that value.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, RootModel, model_validator

from gateway.config.fields import As, ConfigPath, Name
from gateway.config.messages import suggest
from gateway.config.sections import Section
from gateway.config.types import duration

if TYPE_CHECKING:
    from gateway.config.errors import ConfigIssue
    from gateway.config.loader import Document

URL_SCHEMES = ("tcp", "socket")  # `socket://` is pyserial's spelling of the same thing
SERIAL_KEYS = ("baudrate", "parity", "stopbits", "bytesize")
# Half-duplex RS-485 needs a silence between transactions; protocols.md §3.1 advises
# 50-100 ms on a shared bus (3.5 characters is only the protocol's floor).
SERIAL_PAUSE = 0.05


class LinkConfig(Section):
    """One serial port or TCP endpoint, shared by the devices that name it."""

    id: Name = Field(description="Link id that devices give as `link:`.")
    path: ConfigPath | None = Field(
        None, description="Serial device, e.g. /dev/serial/by-id/usb-FTDI_...-port0."
    )
    url: str | None = Field(
        None, description="TCP endpoint instead of a serial port: tcp://HOST:PORT."
    )
    baudrate: int = Field(
        9600, ge=300, le=921_600, description="Line speed in baud (serial links)."
    )
    parity: Literal["N", "E", "O"] = Field(
        "N", description="Parity: N, E (DL/T 645 default) or O (serial links)."
    )
    stopbits: Literal[1, 2] = Field(1, description="Stop bits: 1 or 2 (serial links).")
    bytesize: Literal[7, 8] = Field(8, description="Data bits: 7 or 8 (serial links).")
    pause: Annotated[float, As(duration("0ms", "10s"))] | None = Field(
        None,
        description="Silence between two transactions; default 50ms on serial links, none on TCP.",
    )
    timeout: Annotated[float, As(duration("10ms", "60s"))] = Field(
        1.0, description="Default reply timeout for the devices on this link."
    )
    connect_timeout: Annotated[float, As(duration("100ms", "60s"))] = Field(
        5.0, description="How long opening the port or connecting may take."
    )
    reopen_max: Annotated[float, As(duration("1s", "10m"))] = Field(
        30.0, description="Longest wait between attempts to reopen a lost port."
    )

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        # The section is a list model, so the loader's own "did you mean" cannot see
        # these fields; name the unknown key here, with the same hint.
        if isinstance(data, dict):
            allowed = list(cls.model_fields)
            for key in data:
                if key not in allowed:
                    raise ValueError(f"unknown key '{key}'" + suggest(key, allowed, "allowed keys"))
        return data

    @model_validator(mode="after")
    def _one_endpoint(self) -> Self:
        if (self.path is None) == (self.url is None):
            raise ValueError("give either `path` (a serial port) or `url` (tcp://HOST:PORT)")
        if self.url is not None:
            parse_tcp_url(self.url)
            given = [k for k in SERIAL_KEYS if k in self.model_fields_set]
            if given:
                raise ValueError(f"{', '.join(given)}: serial settings apply to `path` links only")
        return self

    @property
    def is_serial(self) -> bool:
        """True for a serial port, False for a TCP endpoint."""
        return self.path is not None

    @property
    def gap(self) -> float:
        """The pause between transactions, with the per-kind default applied."""
        if self.pause is not None:
            return self.pause
        return SERIAL_PAUSE if self.is_serial else 0.0

    @property
    def endpoint(self) -> str:
        """The path or URL, for logs and status."""
        return str(self.path) if self.path is not None else str(self.url)


def parse_tcp_url(url: str) -> tuple[str, int]:
    """`tcp://host:port` (or `socket://`) → (host, port); ValueError with the reason."""
    parts = urlsplit(url)
    if parts.scheme not in URL_SCHEMES:
        raise ValueError(f"'{url}' is not a TCP URL: write tcp://HOST:PORT")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or not 1 <= port <= 65535:
        raise ValueError(f"'{url}' needs a host and a port 1-65535: write tcp://HOST:PORT")
    return parts.hostname, port


class LinksConfig(RootModel[list[LinkConfig]]):
    """Every declared link, in file order; ids are unique."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _absent_is_empty(cls, data: Any) -> Any:
        # The loader validates an absent section from `{}`: no links declared.
        return [] if data == {} else data

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: set[str] = set()
        for link in self.root:
            if link.id in seen:
                raise ValueError(f"link id '{link.id}' is declared twice")
            seen.add(link.id)
        return self

    def get(self, link_id: str) -> LinkConfig | None:
        """The link declared with `link_id`, or None."""
        return next((link for link in self.root if link.id == link_id), None)

    @property
    def ids(self) -> list[str]:
        """Declared ids, in file order."""
        return [link.id for link in self.root]


def link_references(doc: Document) -> list[ConfigIssue]:
    """Every device whose `link:` names no declared link, reported at that value."""
    data = doc.data if isinstance(doc.data, dict) else {}
    links = data.get("links")
    declared = [
        item["id"]
        for item in (links if isinstance(links, list) else [])
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    ]
    devices = data.get("devices")
    issues: list[ConfigIssue] = []
    for i, device in enumerate(devices if isinstance(devices, list) else []):
        name = device.get("link") if isinstance(device, dict) else None
        if not isinstance(name, str) or name in declared:
            continue
        if declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            msg = f"no link '{name}' is declared{hint} (declared: {', '.join(declared)})"
        else:
            msg = f"no link '{name}' is declared: add it under `links:` (none declared)"
        issues.append(doc.issue(("devices", i, "link"), msg))
    return issues
