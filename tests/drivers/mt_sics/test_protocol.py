"""MT-SICS protocol layer: golden lines from protocols.md §2.1, every error reply, fuzzing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.mt_sics import protocol
from drivers.mt_sics.protocol import LineParser, Status, decode_line


def test_command_builders_are_byte_exact() -> None:
    assert protocol.send_stable() == b"S\r\n"
    assert protocol.send_immediate() == b"SI\r\n"
    assert protocol.send_immediate_repeat() == b"SIR\r\n"
    assert protocol.send_stable_repeat() == b"SR\r\n"
    assert protocol.zero() == b"Z\r\n"
    assert protocol.zero(immediately=True) == b"ZI\r\n"
    assert protocol.tare() == b"T\r\n"
    assert protocol.tare(immediately=True) == b"TI\r\n"
    assert protocol.tare_value() == b"TA\r\n"
    assert protocol.tare_value(Decimal("100.00"), "g") == b"TA 100.00 g\r\n"
    assert protocol.tare_clear() == b"TAC\r\n"
    assert protocol.reset() == b"@\r\n"
    assert protocol.inquiry(4) == b"I4\r\n"
    assert protocol.encode("D", 'say "hi"') == b'D "say ""hi"""\r\n'


def test_builders_refuse_bad_arguments() -> None:
    with pytest.raises(ValueError, match="0-5"):
        protocol.inquiry(9)
    with pytest.raises(ValueError, match="unknown unit"):
        protocol.tare_value(Decimal(1), "stone")
    with pytest.raises(ValueError, match="one line"):
        protocol.encode("D", "a\r\nZ")


@pytest.mark.parametrize(
    ("line", "status", "weight_kg", "stable"),
    [
        # The examples of §2.1, byte for byte.
        (b"S S     100.00 g", Status.STABLE, 0.1, True),
        (b"S D     99.87 g", Status.DYNAMIC, 0.09987, False),
        (b"S S    -12.5 kg", Status.STABLE, -12.5, True),
        (b"S S 2.000 lb", Status.STABLE, 0.90718474, True),
        (b"S S 500 mg", Status.STABLE, 0.0005, True),
        (b"T S 0.250 kg", Status.STABLE, 0.25, True),
        (b"TA A 2.000 kg", Status.DONE, 2.0, False),
    ],
)
def test_weight_replies(line: bytes, status: Status, weight_kg: float, stable: bool) -> None:
    reply = decode_line(line)
    assert reply.status is status
    assert reply.weight_kg == pytest.approx(weight_kg)
    assert reply.stable is stable
    assert reply.fault is None


@pytest.mark.parametrize(
    ("line", "command", "status", "words"),
    [
        (b"ES", "", Status.SYNTAX_ERROR, "syntax"),
        (b"ET", "", Status.TRANSMISSION_ERROR, "serial settings"),
        (b"EL", "", Status.LOGICAL_ERROR, "not allowed"),
        (b"S I", "S", Status.NOT_EXECUTABLE, "not executable"),
        (b"S +", "S", Status.OVERLOAD, "overload"),
        (b"S -", "S", Status.UNDERLOAD, "underload"),
        (b"S L", "S", Status.LOGICAL, "parameter"),
        (b"Z I", "Z", Status.NOT_EXECUTABLE, "not executable"),
        (b"Z +", "Z", Status.OVERLOAD, "overload"),
        (b"Z -", "Z", Status.UNDERLOAD, "underload"),
        (b"T I", "T", Status.NOT_EXECUTABLE, "not executable"),
        (b"T +", "T", Status.OVERLOAD, "overload"),
        (b"ZI I", "ZI", Status.NOT_EXECUTABLE, "not executable"),
    ],
)
def test_every_error_reply_has_readable_text(
    line: bytes, command: str, status: Status, words: str
) -> None:
    reply = decode_line(line)
    assert (reply.command, reply.status) == (command, status)
    assert reply.weight_kg is None
    assert reply.fault is not None
    assert words in reply.fault


def test_acknowledgements_and_texts() -> None:
    assert decode_line(b"Z A").status is Status.DONE
    assert decode_line(b"Z A").fault is None
    # Radwag/Kern finish a zero with a second line `Z D` (§2.1 trap 3).
    assert decode_line(b"Z D").status is Status.DYNAMIC
    serial = decode_line(b'I4 A "0123456789"')
    assert serial.text == ("0123456789",)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"S S 100.00 stone", "unknown unit"),
        (b"S S 100.00", "without a value"),
        (b"S Q", "unknown status"),
        (b"s s 1 g", "not an MT-SICS reply"),
        (b"S S 1 g extra", "without a value"),
        (b"S + 3", "unexpected fields"),
        (b"\xffS S 1 g", "non-ASCII"),
        (b"S S\x001 g", "control characters"),
    ],
)
def test_undecodable_lines_are_malformed_not_exceptions(line: bytes, problem: str) -> None:
    reply = decode_line(line)
    assert reply.weight_kg is None
    assert reply.fault is not None
    assert problem in reply.fault


def test_stream_bouncing_between_stable_and_dynamic() -> None:
    stream = b"".join(
        f"S {'S' if i % 3 == 0 else 'D'} {1 + i / 100:.2f} kg\r\n".encode() for i in range(30)
    )
    parser = LineParser()
    replies = [r for i in range(0, len(stream), 7) for r in parser.feed(stream[i : i + 7])]
    assert [r.stable for r in replies] == [i % 3 == 0 for i in range(30)]
    assert replies[-1].weight_kg == pytest.approx(1.29)


def test_garbage_and_overlong_lines_then_resync() -> None:
    parser = LineParser(max_line=64)
    out = parser.feed(b"\x00\x13noise S S 1 g\r\n")
    assert [r.status for r in out] == [Status.MALFORMED]
    assert parser.feed(b"x" * 200) == []
    assert parser.discarded_bytes >= 200
    out = parser.feed(b"tail of the noise\r\nS S 2.5 kg\r\n")
    assert [(r.status, r.weight_kg) for r in out] == [(Status.STABLE, 2.5)]


def test_bare_lf_and_blank_lines() -> None:
    assert [r.weight_kg for r in LineParser().feed(b"\r\n\nS S 1.000 kg\n")] == [1.0]


@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    parser = LineParser()
    for reply in parser.feed(data):
        assert reply.status is not None


@given(st.binary(max_size=600), st.integers(min_value=1, max_value=40))
def test_resyncs_on_the_next_line(garbage: bytes, chunk: int) -> None:
    parser = LineParser()
    stream = garbage + b"\r\nS S     100.00 g\r\n"
    replies = [r for i in range(0, len(stream), chunk) for r in parser.feed(stream[i : i + chunk])]
    assert replies[-1].raw == b"S S     100.00 g"
    assert replies[-1].weight_kg == pytest.approx(0.1)
