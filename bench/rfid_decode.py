"""RFID decoding throughput on one core: LLRP RO_ACCESS_REPORT, serial UHF frames, SGTIN-96.

Decodes one report of `--tags` TagReportData entries many times and reports tag reports
per second and CPU microseconds per tag, for the common layout our ROSpec asks for (fast
path) and for a layout with extra parameters (general walk), plus the R2000 and M100
stream parsers and EPC decoding. The goal for the whole LLRP path (decode + presence
update, issue 5) is 100,000 tag reports a second; this measures the decode share.
Prints a table and writes bench/results/rfid_decode.json.

    .venv/bin/python bench/rfid_decode.py [--tags 100] [--seconds 1.0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.llrp.protocol import MessageReader, decode_ro_access_report, encode_message
from drivers.uhf_serial import m100, r2000
from gateway.epc import decode_epc, encode_sgtin96

if TYPE_CHECKING:
    from collections.abc import Callable

GTIN = "80614141123458"


def epc_bytes(i: int) -> bytes:
    return bytes.fromhex(encode_sgtin96(GTIN, i, company_prefix_digits=7))


def llrp_report(tags: int, *, general: bool) -> bytes:
    """An RO_ACCESS_REPORT body; `general` adds ChannelIndex and C1G2PC to each entry."""
    out = bytearray()
    for i in range(tags):
        fields = struct.pack(
            ">B12sBHBbBQBH",
            0x8D,
            epc_bytes(i),
            0x81,
            1 + i % 4,
            0x86,
            -40 - i % 30,
            0x82,
            1_700_000_000_000_000 + i,
            0x88,
            1 + i % 5,
        )
        if general:
            fields += b"\x87\x00\x05\x8c\x30\x00"
        out += struct.pack(">HH", 240, 4 + len(fields)) + fields
    return bytes(out)


def r2000_stream(tags: int) -> bytes:
    frames = []
    for i in range(tags):
        data = bytes([(12 << 2) | i % 4, 0x30, 0x00]) + epc_bytes(i) + bytes([0x40 + i % 20])
        frames.append(r2000.build_frame(1, r2000.CMD_REALTIME_INVENTORY, data))
    return b"".join(frames)


def m100_stream(tags: int) -> bytes:
    frames = []
    for i in range(tags):
        params = bytes([0xC9, 0x30, 0x00]) + epc_bytes(i) + b"\x12\x34"
        frames.append(m100.build_frame(m100.CMD_MULTI_POLL, params, m100.TYPE_NOTIFICATION))
    return b"".join(frames)


def measure(fn: Callable[[], int], seconds: float) -> tuple[float, float]:
    """Run `fn` (returns items handled) for about `seconds`; (items/s, CPU µs per item)."""
    items = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        items += fn()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return items / wall, cpu / items * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.tags

    fast = llrp_report(n, general=False)
    general = llrp_report(n, general=True)
    framed = encode_message(61, 1, fast)
    r_stream, m_stream = r2000_stream(n), m100_stream(n)
    epcs = [epc_bytes(i).hex() for i in range(n)]

    def decode_all_epcs() -> int:
        for e in epcs:
            decode_epc(e)
        return len(epcs)

    def reader_and_decode() -> int:
        (msg,) = MessageReader().feed(framed)
        return len(decode_ro_access_report(msg.body).tags)

    cases: dict[str, Callable[[], int]] = {
        "llrp_report_common_layout": lambda: len(decode_ro_access_report(fast).tags),
        "llrp_report_general_walk": lambda: len(decode_ro_access_report(general).tags),
        "llrp_framing_plus_decode": reader_and_decode,
        "r2000_stream_parser": lambda: len(r2000.R2000Parser(1).feed(r_stream)),
        "m100_stream_parser": lambda: len(m100.M100Parser().feed(m_stream)),
        "sgtin96_decode_epc": decode_all_epcs,
    }
    results: dict[str, dict[str, float]] = {}
    print(f"{'case':<28} {'tags/s (median)':>16} {'CPU us/tag':>11}")
    for name, fn in cases.items():
        runs = [measure(fn, args.seconds) for _ in range(args.repeat)]
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        results[name] = {"tags_per_s_median": round(rate), "cpu_us_per_tag_median": round(cpu, 3)}
        print(f"{name:<28} {rate:>16,.0f} {cpu:>11.3f}")

    out = {
        "tags_per_report": n,
        "seconds_per_run": args.seconds,
        "runs": args.repeat,
        "goal_llrp_tags_per_s_incl_presence": 100_000,
        "cases": results,
    }
    path = Path(__file__).parent / "results" / "rfid_decode.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
