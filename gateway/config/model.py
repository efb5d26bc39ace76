"""The root config model, and its JSON Schema with every installed driver's device model."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import Field, PrivateAttr, create_model
from pydantic_core import PydanticUndefined

from gateway.config.catalog import AggregationConfig, CatalogConfig, CommandsConfig
from gateway.config.fleet import FleetConfig
from gateway.config.inference import InferenceConfig
from gateway.config.labels import LabelsConfig
from gateway.config.links import LinksConfig
from gateway.config.mqtt import MqttConfig
from gateway.config.sections import (
    GatewayConfig,
    LoggingConfig,
    OutboxConfig,
    Section,
    StatusConfig,
)
from gateway.driver import DriverConfig

if TYPE_CHECKING:
    from pydantic import BaseModel

    from gateway.driver import Driver
    from gateway.plugins import Registry


class Config(Section):
    """A validated, read-only storegw configuration."""

    gateway: GatewayConfig = Field(description="Who this gateway is and where it keeps state.")
    mqtt: MqttConfig | None = Field(None, description="The broker; absent = print to console.")
    outbox: OutboxConfig = Field(
        default_factory=lambda: OutboxConfig.model_validate({}),
        description="The on-disk queue in front of the uplink.",
    )
    links: LinksConfig = Field(
        default_factory=lambda: LinksConfig([]),
        description="Serial ports and TCP endpoints shared by devices.",
    )
    devices: list[DriverConfig] = Field(
        default_factory=list, description="The devices; each names its driver."
    )
    catalog: CatalogConfig = Field(
        default_factory=CatalogConfig, description="Articles sold in this store."
    )
    aggregation: AggregationConfig = Field(
        default_factory=AggregationConfig, description="Telemetry windows."
    )
    commands: CommandsConfig = Field(
        default_factory=CommandsConfig, description="Commands from the cloud."
    )
    inference: InferenceConfig | None = Field(None, description="Stockout prediction.")
    labels: LabelsConfig = Field(default_factory=LabelsConfig, description="Shelf labels.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Log output.")
    status: StatusConfig = Field(default_factory=StatusConfig, description="Status and metrics.")
    fleet: FleetConfig = Field(default_factory=FleetConfig, description="Remote fleet operations.")

    _inline_secrets: list[str] = PrivateAttr(default_factory=list)

    @property
    def inline_secrets(self) -> list[str]:
        """Dotted paths of secrets written in the file itself (not `_file`, not `${VAR}`)."""
        return list(self._inline_secrets)


def root_model(registry: Registry) -> type[BaseModel]:
    """`Config` with `devices` typed as the installed drivers' models, keyed on `driver`."""
    configs = [cls.Config for _, cls in sorted(registry.drivers.items())]
    item: Any
    if not configs:
        item = DriverConfig
    elif len(configs) == 1:
        item = configs[0]
    else:
        item = Annotated[Union[tuple(configs)], Field(discriminator="driver")]  # noqa: UP007
    model: type[BaseModel] = create_model(
        "Config",
        __base__=Config,
        __doc__=Config.__doc__,
        devices=(
            list[item],
            Field(default_factory=list, description="The devices; each names its driver."),
        ),
    )
    return model


def config_schema(registry: Registry) -> dict[str, Any]:
    """The full JSON Schema of a config file, including every driver's device fields."""
    return root_model(registry).model_json_schema(mode="validation")


def describe_driver(cls: type[Driver]) -> list[tuple[str, str, str, str]]:
    """(field, type, default, description) for each of the driver's config keys."""
    rows = []
    for name, field in cls.Config.model_fields.items():
        if field.is_required():
            default = "(required)"
        elif field.default_factory is not None:
            default = repr(field.default_factory())  # type: ignore[call-arg]
        elif field.default is PydanticUndefined:
            default = ""
        else:
            default = repr(field.default)
        kind = _unit_name(tuple(field.metadata)) or _type_name(field.annotation)
        # A driver narrowing `driver` to its Literal rarely repeats the description.
        inherited = DriverConfig.model_fields.get(name)
        text = field.description or (inherited.description if inherited else None) or ""
        rows.append((name, kind, default, text))
    return rows


def _type_name(annotation: Any) -> str:
    """A short readable type: `int`, `str | None`, `list[str]`, `'a' | 'b'`, `duration`."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _unit_name(args[1:]) or _type_name(args[0])
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None:
        inner = ", ".join(_type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _unit_name(metadata: tuple[Any, ...]) -> str:
    """'duration' or 'size' when the metadata carries one of their JSON Schema patterns."""
    for item in metadata:
        schema = getattr(item, "json_schema", None)
        if isinstance(schema, dict):
            text = str(schema.get("description", ""))
            if text.startswith("A duration"):
                return "duration"
            if text.startswith("A size"):
                return "size"
        nested = getattr(item, "target", None)
        if nested is not None:
            return _unit_name(get_args(nested)[1:])
    return ""
