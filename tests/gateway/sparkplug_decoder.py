"""An independent Sparkplug B decoder for the tests: the spec's `.proto`, written out here
(Sparkplug 3.0 §6.4, `sparkplug_b.proto`, the parts a node's payload uses) and turned into
protobuf classes by a small .proto reader — no protoc, nothing shared with the gateway.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SPARKPLUG_B_PROTO = """
syntax = "proto2";
package org.eclipse.tahu.protobuf;

message Payload {
    message Template {
        message Parameter {
            optional string name = 1;
            optional uint32 type = 2;
        }
        optional string version = 1;
        repeated Metric metrics = 2;
        repeated Parameter parameters = 3;
        optional string template_ref = 4;
        optional bool is_definition = 5;
    }
    message PropertyValue {
        optional uint32 type = 1;
        optional bool is_null = 2;
        oneof value {
            uint32 int_value = 3;
            uint64 long_value = 4;
            float float_value = 5;
            double double_value = 6;
            bool boolean_value = 7;
            string string_value = 8;
        }
    }
    message PropertySet {
        repeated string keys = 1;
        repeated PropertyValue values = 2;
    }
    message MetaData {
        optional bool is_multi_part = 1;
        optional string content_type = 2;
        optional uint64 size = 3;
        optional uint64 seq = 4;
        optional string file_name = 5;
        optional string file_type = 6;
        optional string md5 = 7;
        optional string description = 8;
    }
    message Metric {
        optional string name = 1;
        optional uint64 alias = 2;
        optional uint64 timestamp = 3;
        optional uint32 datatype = 4;
        optional bool is_historical = 5;
        optional bool is_transient = 6;
        optional bool is_null = 7;
        optional MetaData metadata = 8;
        optional PropertySet properties = 9;
        oneof value {
            uint32 int_value = 10;
            uint64 long_value = 11;
            float float_value = 12;
            double double_value = 13;
            bool boolean_value = 14;
            string string_value = 15;
            bytes bytes_value = 16;
            Template template_value = 18;
        }
    }
    optional uint64 timestamp = 1;
    repeated Metric metrics = 2;
    optional uint64 seq = 3;
    optional string uuid = 4;
    optional bytes body = 5;
}
"""

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}
_TOKEN = re.compile(r"[A-Za-z_][\w.]*|\d+|[{}=;]|\"[^\"]*\"")


def _parse(text: str) -> descriptor_pb2.FileDescriptorProto:
    tokens = _TOKEN.findall(text)
    file = descriptor_pb2.FileDescriptorProto(name="test/sparkplug_b.proto")
    stack: list[Any] = []  # DescriptorProto nesting; a oneof is (msg, index)
    names: list[str] = []
    pending: list[tuple[Any, list[str], str]] = []  # resolved once every message exists
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "syntax":
            file.syntax = tokens[i + 2].strip('"')
            i += 4
        elif tok == "package":
            file.package = tokens[i + 1]
            i += 3
        elif tok == "message":
            parent = stack[-1] if stack else None
            msg = (parent.nested_type if parent is not None else file.message_type).add()
            msg.name = tokens[i + 1]
            stack.append(msg)
            names.append(tokens[i + 1])
            i += 3
        elif tok == "oneof":
            msg = stack[-1]
            msg.oneof_decl.add(name=tokens[i + 1])
            stack.append((msg, len(msg.oneof_decl) - 1))
            names.append("")
            i += 3
        elif tok == "}":
            stack.pop()
            names.pop()
            i += 1
        else:
            in_oneof = isinstance(stack[-1], tuple)
            msg, index = stack[-1] if in_oneof else (stack[-1], None)
            label = _F.LABEL_OPTIONAL
            if tok in ("optional", "repeated"):
                label = _F.LABEL_REPEATED if tok == "repeated" else _F.LABEL_OPTIONAL
                i += 1
            kind, name, number = tokens[i], tokens[i + 1], int(tokens[i + 3])
            field = msg.field.add(name=name, number=number, label=label)
            if kind in _SCALARS:
                field.type = _SCALARS[kind]
            else:
                field.type = _F.TYPE_MESSAGE
                pending.append((field, [n for n in names if n], kind))
            if index is not None:
                field.oneof_index = index
            i += 5
    for field, scope, kind in pending:
        field.type_name = _resolve(file, scope, kind)
    return file


def _resolve(file: descriptor_pb2.FileDescriptorProto, scope: list[str], name: str) -> str:
    """The full name of message `name` seen from `scope` (innermost scope first, as protoc)."""
    for depth in range(len(scope), -1, -1):
        candidate = [*scope[:depth], name]
        if _exists(file, candidate):
            return "." + ".".join([file.package, *candidate])
    raise LookupError(name)


def _exists(file: descriptor_pb2.FileDescriptorProto, path: list[str]) -> bool:
    level: Any = file.message_type
    for part in path:
        found = next((m for m in level if m.name == part), None)
        if found is None:
            return False
        level = found.nested_type
    return True


def _classes() -> type[Any]:
    file = _parse(SPARKPLUG_B_PROTO)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("org.eclipse.tahu.protobuf.Payload")
    )


Payload = _classes()


def decode(data: bytes) -> Any:
    """The Payload message in `data`."""
    msg = Payload()
    msg.ParseFromString(data)
    return msg


def encode_command(metrics: dict[str, Any]) -> bytes:
    """An NCMD payload writing `metrics` (bool → Boolean, str → String)."""
    msg = Payload()
    msg.timestamp = 1
    for name, value in metrics.items():
        m = msg.metrics.add()
        m.name = name
        if isinstance(value, bool):
            m.datatype, m.boolean_value = 11, value
        else:
            m.datatype, m.string_value = 12, value
    out: bytes = msg.SerializeToString()
    return out
