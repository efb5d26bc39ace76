"""The `modbus` device entry: where the device is, what to read, how often."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from drivers.modbus.coalesce import DEFAULT_MAX_GAP, MAX_REGISTERS, ReadBlock, plan
from drivers.modbus.profiles import ProfileError, load_profile, merge_registers
from drivers.modbus.registers import RegisterSpec  # noqa: TC001 - pydantic reads it at run time
from gateway import DriverConfig
from gateway.config.fields import As
from gateway.config.links import parse_tcp_url
from gateway.config.types import duration


class ModbusConfig(DriverConfig):
    """One Modbus device (a meter): its link, unit id, register map and poll cadence."""

    driver: Literal["modbus"] = "modbus"
    link: str | None = Field(
        None, description="Id of the `links:` entry the device hangs on (RS-485 bus, gateway)."
    )
    url: str | None = Field(
        None, description="The device's own Modbus TCP endpoint instead: tcp://HOST:PORT."
    )
    framing: Literal["auto", "rtu", "tcp"] = Field(
        "auto",
        description="auto: RTU on serial links, Modbus TCP on TCP; rtu over TCP for serial "
        "servers in transparent mode.",
    )
    unit_id: int | None = Field(
        None, ge=0, le=255, description="Modbus unit (slave) id; default the profile's, else 1."
    )
    profile: str | None = Field(
        None, description="Shipped register map by name (eastron_sdm630, eastron_sdm120, ...)."
    )
    registers: list[RegisterSpec] = Field(
        default_factory=list,
        description="Registers to read; with a profile, same name replaces, new names add.",
    )
    interval: Annotated[float, As(duration("10ms", "1h"))] = Field(
        5.0, description="Time between polls."
    )
    offset: Annotated[float, As(duration("0ms", "1h"))] = Field(
        0.0, description="Shift of this device's polls, to spread devices on one bus."
    )
    jitter: Annotated[float, As(duration("0ms", "1m"))] = Field(
        0.0, description="Random extra delay (0 to this) added to each poll."
    )
    timeout: Annotated[float, As(duration("10ms", "30s"))] | None = Field(
        None, description="Reply timeout per request; default the link's (1s)."
    )
    retries: int = Field(
        0, ge=0, le=5, description="Repeat a request that timed out or arrived corrupted."
    )
    pause: Annotated[float, As(duration("0ms", "10s"))] = Field(
        0.0, description="Extra silence before this device's requests (slow devices)."
    )
    max_gap: int | None = Field(
        None, ge=0, le=MAX_REGISTERS, description="Most unused registers one read may span."
    )
    max_registers: int | None = Field(
        None, ge=1, le=MAX_REGISTERS, description="Largest read the device accepts."
    )
    dead_after: int = Field(
        3, ge=1, le=1000, description="Failed polls in a row before the device counts as dead."
    )
    dead_max: Annotated[float, As(duration("1s", "1h"))] = Field(
        60.0, description="While dead, polls slow down (doubling) to at most this interval."
    )

    @model_validator(mode="after")
    def _usable(self) -> Self:
        if (self.link is None) == (self.url is None):
            raise ValueError("give either `link` (a declared link id) or `url` (tcp://HOST:PORT)")
        if self.url is not None:
            parse_tcp_url(self.url)
        self.read_plan()  # a register map that cannot be read is a config error
        return self

    def register_map(self) -> tuple[RegisterSpec, ...]:
        """The profile's registers (if any) merged with the inline ones."""
        base: tuple[RegisterSpec, ...] = ()
        if self.profile is not None:
            try:
                base = load_profile(self.profile).registers
            except ProfileError as exc:
                raise ValueError("; ".join(exc.issues)) from None
        merged = merge_registers(base, self.registers)
        if not merged:
            raise ValueError("nothing to read: name a `profile` or list `registers`")
        return merged

    def resolved_unit(self) -> int:
        """The unit id: given, else the profile's factory default, else 1."""
        if self.unit_id is not None:
            return self.unit_id
        return load_profile(self.profile).unit_id if self.profile is not None else 1

    def read_plan(self) -> list[ReadBlock]:
        """The coalesced read requests of one poll."""
        registers = self.register_map()
        limits = load_profile(self.profile) if self.profile is not None else None
        gap = self.max_gap
        if gap is None:
            gap = limits.max_gap if limits and limits.max_gap is not None else DEFAULT_MAX_GAP
        count = self.max_registers or (limits.max_registers if limits else None)
        return plan(registers, max_gap=gap, max_count=count)
