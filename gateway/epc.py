"""EPC decoding per the GS1 EPC Tag Data Standard (TDS): SGTIN-96 to GTIN-14 + serial.

Retail item tags carry SGTIN-96 (TDS §14.5.1): header 0x30, filter (3 bits), partition
(3 bits) splitting 44 bits between company prefix and item reference, serial (38 bits).
The GTIN-14 is indicator digit + company prefix + item reference + a recomputed GS1 check
digit. Other binary headers are recognised (TDS §14.2, table 14-1) but passed through raw,
so the gateway can count them. `decode_epc` never raises: anything it cannot decode comes
back as an `OtherEpc` with scheme UNKNOWN and a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = [
    "EpcScheme",
    "OtherEpc",
    "Sgtin96",
    "decode_epc",
    "encode_sgtin96",
    "gs1_check_digit",
]


class EpcScheme(StrEnum):
    """The EPC scheme a tag's binary header names (TDS table 14-1)."""

    SGTIN_96 = "sgtin-96"
    SSCC_96 = "sscc-96"
    SGLN_96 = "sgln-96"
    GRAI_96 = "grai-96"
    GIAI_96 = "giai-96"
    GID_96 = "gid-96"
    SGTIN_198 = "sgtin-198"
    UNKNOWN = "unknown"


# Header byte → (scheme, total bits). Only SGTIN-96 is decoded; the rest are recognised.
_HEADERS: dict[int, tuple[EpcScheme, int]] = {
    0x30: (EpcScheme.SGTIN_96, 96),
    0x31: (EpcScheme.SSCC_96, 96),
    0x32: (EpcScheme.SGLN_96, 96),
    0x33: (EpcScheme.GRAI_96, 96),
    0x34: (EpcScheme.GIAI_96, 96),
    0x35: (EpcScheme.GID_96, 96),
    0x36: (EpcScheme.SGTIN_198, 198),
}

# SGTIN partition table (TDS table 14-2): partition → (company prefix bits, digits,
# item reference bits, digits incl. the indicator digit). 7 is reserved: invalid.
_PARTITIONS: tuple[tuple[int, int, int, int], ...] = (
    (40, 12, 4, 1),
    (37, 11, 7, 2),
    (34, 10, 10, 3),
    (30, 9, 14, 4),
    (27, 8, 17, 5),
    (24, 7, 20, 6),
    (20, 6, 24, 7),
)
_SERIAL_BITS = 38


@dataclass(frozen=True, slots=True)
class Sgtin96:
    """A decoded SGTIN-96: the GTIN-14 it names and the item's serial number."""

    hex: str
    filter: int
    partition: int
    company_prefix: str
    item_reference: str
    serial: int
    gtin: str
    scheme: Literal[EpcScheme.SGTIN_96] = EpcScheme.SGTIN_96

    @property
    def tag_uri(self) -> str:
        """The EPC tag URI, e.g. urn:epc:tag:sgtin-96:3.0614141.812345.6789."""
        ref = f"{self.company_prefix}.{self.item_reference}.{self.serial}"
        return f"urn:epc:tag:sgtin-96:{self.filter}.{ref}"

    @property
    def pure_identity_uri(self) -> str:
        """The EPC pure identity URI, e.g. urn:epc:id:sgtin:0614141.812345.6789."""
        return f"urn:epc:id:sgtin:{self.company_prefix}.{self.item_reference}.{self.serial}"


@dataclass(frozen=True, slots=True)
class OtherEpc:
    """An EPC passed through raw: a recognised scheme we do not decode, or UNKNOWN + reason."""

    hex: str
    scheme: EpcScheme
    reason: str | None = None


def gs1_check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit for `digits` (weights 3,1,3,… from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def _to_bytes(epc: str | bytes | bytearray | memoryview) -> bytes | None:
    if isinstance(epc, str):
        text = epc.replace(" ", "").replace(":", "").replace("-", "")
        if len(text) % 2 or not text.isascii():
            return None
        try:
            return bytes.fromhex(text)
        except ValueError:
            return None
    if isinstance(epc, bytes | bytearray | memoryview):
        return bytes(epc)
    return None


def decode_epc(epc: str | bytes | bytearray | memoryview) -> Sgtin96 | OtherEpc:
    """Decode an EPC given as hex or bytes; never raises."""
    raw = _to_bytes(epc)
    if raw is None:
        return OtherEpc(str(epc)[:64], EpcScheme.UNKNOWN, "not hexadecimal")
    text = raw.hex()
    if not raw:
        return OtherEpc(text, EpcScheme.UNKNOWN, "empty EPC")
    known = _HEADERS.get(raw[0])
    if known is None:
        return OtherEpc(text, EpcScheme.UNKNOWN, f"unrecognised header 0x{raw[0]:02x}")
    scheme, bits = known
    if len(raw) != (bits + 7) // 8:
        reason = f"{scheme} needs {bits} bits, got {len(raw) * 8}"
        return OtherEpc(text, EpcScheme.UNKNOWN, reason)
    if scheme is not EpcScheme.SGTIN_96:
        return OtherEpc(text, scheme)
    return _decode_sgtin96(text, int.from_bytes(raw, "big"))


def _decode_sgtin96(text: str, value: int) -> Sgtin96 | OtherEpc:
    filter_value = (value >> 85) & 0x7
    partition = (value >> 82) & 0x7
    if partition >= len(_PARTITIONS):
        return OtherEpc(text, EpcScheme.UNKNOWN, "SGTIN-96 partition 7 is reserved")
    cp_bits, cp_digits, ref_bits, ref_digits = _PARTITIONS[partition]
    company = (value >> (_SERIAL_BITS + ref_bits)) & ((1 << cp_bits) - 1)
    item = (value >> _SERIAL_BITS) & ((1 << ref_bits) - 1)
    serial = value & ((1 << _SERIAL_BITS) - 1)
    # TDS §14.3.3: a field whose value needs more digits than the partition allows is a
    # decoding error, not a number to truncate.
    if company >= 10**cp_digits or item >= 10**ref_digits:
        return OtherEpc(text, EpcScheme.UNKNOWN, "SGTIN-96 field exceeds its partition")
    cp_text = f"{company:0{cp_digits}d}"
    ref_text = f"{item:0{ref_digits}d}"
    body = ref_text[0] + cp_text + ref_text[1:]
    gtin = body + str(gs1_check_digit(body))
    return Sgtin96(text, filter_value, partition, cp_text, ref_text, serial, gtin)


def encode_sgtin96(
    gtin: str, serial: int, *, company_prefix_digits: int, filter_value: int = 1
) -> str:
    """The SGTIN-96 hex (lower case) for a GTIN-14 and serial; raises ValueError on bad input.

    The company prefix length is not in the GTIN itself: it comes from the GS1 prefix
    allocation, so the caller says it (6-12 digits).
    """
    if len(gtin) != 14 or not gtin.isdigit() or int(gtin[13]) != gs1_check_digit(gtin[:13]):
        raise ValueError(f"not a valid GTIN-14: {gtin!r}")
    if not 0 <= serial < 1 << _SERIAL_BITS or not 0 <= filter_value <= 7:
        raise ValueError("serial or filter out of range")
    partition = 12 - company_prefix_digits
    if not 0 <= partition < len(_PARTITIONS):
        raise ValueError("company prefix must have 6 to 12 digits")
    cp_bits, cp_digits, ref_bits, _ = _PARTITIONS[partition]
    company = int(gtin[1 : 1 + cp_digits])
    item = int(gtin[0] + gtin[1 + cp_digits : 13])
    value = 0x30
    value = (value << 3) | filter_value
    value = (value << 3) | partition
    value = (value << cp_bits) | company
    value = (value << ref_bits) | item
    value = (value << _SERIAL_BITS) | serial
    return f"{value:024x}"
