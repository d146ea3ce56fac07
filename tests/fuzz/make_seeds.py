#!/usr/bin/env python3
"""make_seeds.py - writes the generated seeds of corpus/ with a tickd binary.

    python3 tests/fuzz/make_seeds.py BUILD/src/tickd

The ITCH, MoldUDP64, CSV and journal seeds are real messages made by the
encoders (`tickd gen`, `tickd replay --journal`), put in the input layout of
their harness: a control byte in front (fuzz_market.h), for the journal a
flags byte too, and for MoldUDP64 each datagram behind a 2-byte big-endian
length. The hand-written seeds (RESP, HTTP, CSV edge cases, configs) are kept
as they are. Generated ITCH and CSV are the same bytes on every run; a
journal carries receive times, so it differs from run to run.
"""
import glob
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# Control bytes (fuzz_market.h): defaults; debug heap, collections, 64 per
# run, 1-byte chunks; collections, 1 per run, pacing, chunks up to 512;
# debug, collections, 3 per run, ticks kept past the market, pacing, chunks
# up to 8.
CTL_DEFAULT, CTL_BYTES, CTL_PACED, CTL_SMALL = 0x00, 0x2F, 0xD6, 0x9B


def tickd(binary, *args):
    subprocess.run([binary, *args], check=True, stdout=subprocess.DEVNULL)


def gen(binary, kind, symbols, messages, seed, tmp):
    path = os.path.join(tmp, f"{kind}-{symbols}-{messages}-{seed}")
    tickd(binary, "gen", kind, "--symbols", str(symbols), "--messages", str(messages),
          "--seed", str(seed), "-o", path)
    with open(path, "rb") as f:
        return f.read()


def write(harness, name, data):
    os.makedirs(os.path.join(CORPUS, harness), exist_ok=True)
    with open(os.path.join(CORPUS, harness, name), "wb") as f:
        f.write(data)


def itch_messages(day):
    """Splits a BinaryFILE stream into its messages."""
    msgs, off = [], 0
    while off + 2 <= len(day):
        (n,) = struct.unpack_from(">H", day, off)
        msgs.append(day[off + 2:off + 2 + n])
        off += 2 + n
    return msgs


def mold_packet(session, seq, msgs, count=None):
    body = b"".join(struct.pack(">H", len(m)) + m for m in msgs)
    count = len(msgs) if count is None else count
    return session.ljust(10, b" ") + struct.pack(">QH", seq, count) + body


def datagrams(packets):
    return b"".join(struct.pack(">H", len(p)) + p for p in packets)


def mold_seeds(msgs):
    s1, s2 = b"TICKD00001", b"TICKD00002"
    # A clean stream: packets of 1 to 4 messages, heartbeats, end of session.
    clean, seq, i, k = [], 1, 0, 0
    while i < len(msgs):
        n = 1 + k % 4
        clean.append(mold_packet(s1, seq, msgs[i:i + n]))
        seq, i, k = seq + len(msgs[i:i + n]), i + n, k + 1
        if k % 5 == 0:
            clean.append(mold_packet(s1, seq, [], 0))
    clean.append(mold_packet(s1, seq, [], 0xFFFF))
    # Trouble: a gap, a repeated packet, an overlapping one, a truncated
    # one, then a new session starting over at 1.
    a = msgs[:30]
    trouble = [
        mold_packet(s1, 1, a[0:3]),
        mold_packet(s1, 6, a[5:8]),          # 4 and 5 lost
        mold_packet(s1, 6, a[5:8]),          # repeated
        mold_packet(s1, 7, a[6:10]),         # overlaps 7 and 8
        mold_packet(s1, 11, a[10:13])[:-5],  # cut short
        mold_packet(s1, 14, [], 0),
        mold_packet(s2, 1, a[0:4]),
        mold_packet(s2, 5, a[4:6]),
        mold_packet(s2, 7, [], 0xFFFF),
    ]
    # Jumps: a packet numbered 2^64 - 5 and a heartbeat
    # far ahead, ignored while the stream goes on; a packet that would wrap;
    # three packets 50,000,000 ahead, each continuing the last, which
    # confirm the jump; a new session far from 1, confirmed the same way.
    far, top = 50_000_000, 2**64 - 5
    jumps = [
        mold_packet(s1, 1, a[0:3]),
        mold_packet(s1, top, a[3:4]),
        mold_packet(s1, 4, a[3:6]),
        mold_packet(s1, top, [], 0),
        mold_packet(s1, 2**64 - 1, a[6:8]),
        mold_packet(s1, 7, a[6:8]),
        mold_packet(s1, far, a[8:10]),
        mold_packet(s1, far + 2, a[10:12]),
        mold_packet(s1, far + 4, a[12:14]),
        mold_packet(s1, far + 6, a[14:15]),
        mold_packet(s2, top - 8, a[15:16]),
        mold_packet(s2, top - 7, a[16:17]),
        mold_packet(s1, far + 7, a[17:18]),
        mold_packet(s2, top - 6, a[18:19]),
        mold_packet(s2, top - 5, a[19:20]),
        mold_packet(s2, top - 4, a[20:21]),
    ]
    return datagrams(clean), datagrams(trouble), datagrams(jumps)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_seeds.py TICKD")
    binary = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        day1 = gen(binary, "itch", 3, 200, 1, tmp)
        day2 = gen(binary, "itch", 2, 80, 2, tmp)
        day3 = gen(binary, "itch", 5, 120, 3, tmp)
        write("fuzz_itch", "gen_3sym_200msg", bytes([CTL_DEFAULT]) + day1)
        write("fuzz_itch", "gen_2sym_80msg_bytewise", bytes([CTL_BYTES]) + day2)
        write("fuzz_itch", "gen_5sym_120msg_paced", bytes([CTL_PACED]) + day3)
        write("fuzz_itch", "gen_2sym_80msg_small_chunks", bytes([CTL_SMALL]) + day2)

        clean, trouble, jumps = mold_seeds(itch_messages(day1))
        write("fuzz_mold", "session_clean", bytes([CTL_DEFAULT]) + clean)
        write("fuzz_mold", "session_gap_dup_truncated_new", bytes([CTL_SMALL]) + trouble)
        write("fuzz_mold", "session_jumps_ignored_and_confirmed", bytes([CTL_DEFAULT]) + jumps)

        csv1 = gen(binary, "csv", 3, 40, 2, tmp)
        csv2 = gen(binary, "csv", 2, 15, 5, tmp)
        write("fuzz_csv", "gen_3sym_40ticks", bytes([CTL_DEFAULT]) + csv1)
        write("fuzz_csv", "gen_2sym_15ticks_small_chunks", bytes([CTL_SMALL]) + csv2)

        for name, day, fmt, ctl, flags in [
            ("replay_itch_2sym", day2, "itch", CTL_DEFAULT, 0),
            ("replay_itch_2sym_crc_fixed_bytewise", day2, "itch", CTL_BYTES, 1),
            ("replay_csv_2sym_paced", csv2, "csv", CTL_PACED, 1),
        ]:
            src = os.path.join(tmp, name + "." + fmt)
            with open(src, "wb") as f:
                f.write(day)
            jdir = os.path.join(tmp, name)
            os.mkdir(jdir)
            tickd(binary, "replay", src, "--format", fmt, "--journal", jdir)
            (journal,) = glob.glob(os.path.join(jdir, "*.tlog"))
            with open(journal, "rb") as f:
                write("fuzz_journal", name, bytes([ctl, flags]) + f.read())


if __name__ == "__main__":
    main()
