"""EPC decoding: the GS1 TDS worked SGTIN-96 example, every partition, check digits, fuzz."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.epc import (
    EpcScheme,
    OtherEpc,
    Sgtin96,
    decode_epc,
    encode_sgtin96,
    gs1_check_digit,
)

# Partition table as printed in protocols.md §1.1 (GS1 TDS table 14-2), written out again
# here so the test does not trust the module's own copy.
PARTITIONS = {
    0: (40, 12, 4, 1),
    1: (37, 11, 7, 2),
    2: (34, 10, 10, 3),
    3: (30, 9, 14, 4),
    4: (27, 8, 17, 5),
    5: (24, 7, 20, 6),
    6: (20, 6, 24, 7),
}


def test_gs1_worked_example() -> None:
    epc = decode_epc("3074257BF7194E4000001A85")
    assert isinstance(epc, Sgtin96)
    assert epc.scheme is EpcScheme.SGTIN_96
    assert (epc.filter, epc.partition) == (3, 5)
    assert (epc.company_prefix, epc.item_reference, epc.serial) == ("0614141", "812345", 6789)
    assert epc.gtin == "80614141123458"
    assert epc.hex == "3074257bf7194e4000001a85"
    assert epc.tag_uri == "urn:epc:tag:sgtin-96:3.0614141.812345.6789"
    assert epc.pure_identity_uri == "urn:epc:id:sgtin:0614141.812345.6789"


def test_worked_example_encodes_back() -> None:
    hex_ = encode_sgtin96("80614141123458", 6789, company_prefix_digits=7, filter_value=3)
    assert hex_ == "3074257bf7194e4000001a85"


def test_m100_sample_tag_from_protocols_md() -> None:
    # The EPC in protocols.md §1.4's tag notification is an SGTIN-96 (GS1 Taiwan prefix).
    epc = decode_epc(bytes.fromhex("30751FEB705C5904E3D50D70"))
    assert isinstance(epc, Sgtin96)
    assert (epc.filter, epc.partition, epc.company_prefix) == (3, 5, "4717276")
    assert (epc.item_reference, epc.serial) == ("094564", 21002259824)
    assert epc.gtin == "04717276945640"


def test_llrp_sample_epc_is_not_gs1() -> None:
    epc = decode_epc("e2003098881900722140369e")
    assert epc == OtherEpc(
        "e2003098881900722140369e", EpcScheme.UNKNOWN, "unrecognised header 0xe2"
    )


@pytest.mark.parametrize("partition", sorted(PARTITIONS))
def test_every_partition(partition: int) -> None:
    cp_bits, cp_digits, ref_bits, ref_digits = PARTITIONS[partition]
    company = int("9" * cp_digits)  # the largest prefix the partition holds
    item = int("1" + "0" * (ref_digits - 1)) if ref_digits > 1 else 7
    serial = (1 << 38) - 1
    value = (0x30 << 88) | (2 << 85) | (partition << 82)
    value |= (company << (38 + ref_bits)) | (item << 38) | serial
    assert cp_bits + ref_bits == 44
    epc = decode_epc(f"{value:024X}")
    assert isinstance(epc, Sgtin96)
    assert (epc.filter, epc.partition, epc.serial) == (2, partition, serial)
    assert epc.company_prefix == "9" * cp_digits
    assert epc.item_reference == f"{item:0{ref_digits}d}"
    body = epc.item_reference[0] + epc.company_prefix + epc.item_reference[1:]
    assert len(body) == 13
    assert epc.gtin == body + str(gs1_check_digit(body))
    again = encode_sgtin96(epc.gtin, serial, company_prefix_digits=cp_digits, filter_value=2)
    assert again == f"{value:024x}"


@pytest.mark.parametrize(
    ("digits", "check"),
    [
        ("8061414112345", 8),  # GS1 TDS example
        ("400638133393", 1),  # EAN-13 4006381333931
        ("03600029145", 2),  # UPC-A 036000291452
        ("0000000000000", 0),
        ("9999999999999", 7),  # 7 x 9 x 3 + 6 x 9 = 243
    ],
)
def test_check_digits(digits: str, check: int) -> None:
    assert gs1_check_digit(digits) == check


@pytest.mark.parametrize(
    ("header", "scheme"),
    [
        (0x31, EpcScheme.SSCC_96),
        (0x32, EpcScheme.SGLN_96),
        (0x33, EpcScheme.GRAI_96),
        (0x34, EpcScheme.GIAI_96),
        (0x35, EpcScheme.GID_96),
    ],
)
def test_other_96_bit_schemes_are_recognised(header: int, scheme: EpcScheme) -> None:
    raw = bytes([header]) + bytes(range(11))
    assert decode_epc(raw) == OtherEpc(raw.hex(), scheme)


def test_sgtin_198_is_recognised() -> None:
    raw = bytes([0x36]) + bytes(24)  # 198 bits pad to 25 octets
    assert decode_epc(raw).scheme is EpcScheme.SGTIN_198


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("3074257BF7194E4000001A", "sgtin-96 needs 96 bits, got 88"),
        ("307C257BF7194E4000001A85", "SGTIN-96 partition 7 is reserved"),
        ("3000000000000000000000FF", None),  # partition 0, item reference 0: valid
        ("3003FFFFFFFFF00000000000", "SGTIN-96 field exceeds its partition"),
        ("", "empty EPC"),
        ("30 74 25 7b", "sgtin-96 needs 96 bits, got 32"),
        ("307", "not hexadecimal"),
        ("zz", "not hexadecimal"),
        ("éé", "not hexadecimal"),
    ],
)
def test_bad_and_edge_inputs(value: str, reason: str | None) -> None:
    epc = decode_epc(value)
    if reason is None:
        assert isinstance(epc, Sgtin96)
        assert epc.gtin == "00000000000000"
    else:
        assert isinstance(epc, OtherEpc)
        assert (epc.scheme, epc.reason) == (EpcScheme.UNKNOWN, reason)


def test_encode_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="GTIN-14"):
        encode_sgtin96("80614141123459", 1, company_prefix_digits=7)
    with pytest.raises(ValueError, match="6 to 12"):
        encode_sgtin96("80614141123458", 1, company_prefix_digits=5)
    with pytest.raises(ValueError, match="out of range"):
        encode_sgtin96("80614141123458", 1 << 38, company_prefix_digits=7)


@given(st.one_of(st.binary(max_size=40), st.text(max_size=60)))
def test_fuzz_never_raises(value: bytes | str) -> None:
    epc = decode_epc(value)
    if isinstance(epc, Sgtin96):
        assert int(epc.gtin[13]) == gs1_check_digit(epc.gtin[:13])
        cp_digits = len(epc.company_prefix)
        back = encode_sgtin96(
            epc.gtin, epc.serial, company_prefix_digits=cp_digits, filter_value=epc.filter
        )
        assert back == epc.hex


@given(st.binary(min_size=11, max_size=11))
def test_fuzz_sgtin_header(rest: bytes) -> None:
    epc = decode_epc(b"\x30" + rest)
    assert isinstance(epc, Sgtin96) or epc.reason is not None
