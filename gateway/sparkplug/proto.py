"""The Sparkplug B 3.0 payload, encoded with the `protobuf` runtime (protocols.md §6.1).

The message types are built here from their field numbers (Sparkplug 3.0 §6.4, package
`org.eclipse.tahu.protobuf`, proto2) in a private descriptor pool, so no generated code
and no `protoc` are needed, and nothing clashes with another Sparkplug library's types.
Only the fields storegw writes or reads are declared; proto2 keeps any other field a peer
sends as unknown bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "org.eclipse.tahu.protobuf"


class DataType(IntEnum):
    """Sparkplug metric data types (the subset storegw sends; §6.4.16)."""

    INT64 = 4
    UINT64 = 8
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12


# (name, number, type, value field for metrics) — Payload.Metric, §6.4.7.
_METRIC_FIELDS = (
    ("name", 1, _F.TYPE_STRING),
    ("alias", 2, _F.TYPE_UINT64),
    ("timestamp", 3, _F.TYPE_UINT64),
    ("datatype", 4, _F.TYPE_UINT32),
    ("is_historical", 5, _F.TYPE_BOOL),
    ("is_transient", 6, _F.TYPE_BOOL),
    ("is_null", 7, _F.TYPE_BOOL),
)
_VALUE_FIELDS = (
    ("int_value", 10, _F.TYPE_UINT32),
    ("long_value", 11, _F.TYPE_UINT64),
    ("float_value", 12, _F.TYPE_FLOAT),
    ("double_value", 13, _F.TYPE_DOUBLE),
    ("boolean_value", 14, _F.TYPE_BOOL),
    ("string_value", 15, _F.TYPE_STRING),
    ("bytes_value", 16, _F.TYPE_BYTES),
)
_VALUE_OF = {
    DataType.INT64: "long_value",
    DataType.UINT64: "long_value",
    DataType.DOUBLE: "double_value",
    DataType.BOOLEAN: "boolean_value",
    DataType.STRING: "string_value",
}


def _field(
    msg: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    kind: int,
    *,
    repeated: bool = False,
    type_name: str | None = None,
    oneof: int | None = None,
) -> None:
    f = msg.field.add(name=name, number=number, type=kind)
    f.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name is not None:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof


def _build() -> tuple[type[Any], type[Any]]:
    file = descriptor_pb2.FileDescriptorProto(
        name="storegw/sparkplug_b.proto", package=_PACKAGE, syntax="proto2"
    )
    payload = file.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    for name, number, kind in _METRIC_FIELDS:
        _field(metric, name, number, kind)
    metric.oneof_decl.add(name="value")
    for name, number, kind in _VALUE_FIELDS:
        _field(metric, name, number, kind, oneof=0)
    _field(payload, "timestamp", 1, _F.TYPE_UINT64)
    _field(
        payload,
        "metrics",
        2,
        _F.TYPE_MESSAGE,
        repeated=True,
        type_name=f".{_PACKAGE}.Payload.Metric",
    )
    _field(payload, "seq", 3, _F.TYPE_UINT64)
    _field(payload, "uuid", 4, _F.TYPE_STRING)
    _field(payload, "body", 5, _F.TYPE_BYTES)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    payload_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Payload"))
    metric_cls = message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{_PACKAGE}.Payload.Metric")
    )
    return payload_cls, metric_cls


Payload, Metric = _build()


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One metric to encode: name, type, value (None = null), time in ms, flags."""

    name: str
    datatype: DataType
    value: Any
    timestamp: int | None = None
    historical: bool = False


def encode(
    metrics: list[MetricValue], *, timestamp: int, seq: int | None, with_types: bool = True
) -> bytes:
    """A serialised Payload; `seq` None for NDEATH, `with_types` False for DATA (§6.4.7)."""
    msg = Payload()
    msg.timestamp = timestamp
    if seq is not None:
        msg.seq = seq
    for m in metrics:
        out = msg.metrics.add()
        out.name = m.name
        if m.timestamp is not None:
            out.timestamp = m.timestamp
        if with_types:
            out.datatype = int(m.datatype)
        if m.historical:
            out.is_historical = True
        if m.value is None:
            out.is_null = True
        elif m.datatype is DataType.INT64:
            out.long_value = int(m.value) & 0xFFFF_FFFF_FFFF_FFFF  # two's complement, §6.4.16
        else:
            setattr(out, _VALUE_OF[m.datatype], m.value)
    data: bytes = msg.SerializeToString()
    return data


def decode(data: bytes) -> list[tuple[str, Any]]:
    """(name, value) of each metric in a received payload (NCMD, DCMD)."""
    msg = Payload()
    msg.ParseFromString(data)
    out = []
    for m in msg.metrics:
        which = m.WhichOneof("value")
        out.append((str(m.name), None if which is None else getattr(m, which)))
    return out
