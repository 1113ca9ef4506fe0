#!/usr/bin/env python3
"""Seeds corpus/<target>/ with the message shapes LTTng 2.15 added (minor 15): VERSION 2.14 and
2.15, CREATE_SESSION 2.15 (the 2.11 fixed part, trace_format u32, the names) in both formats and
with a format out of range, its reply, and LIST_SESSIONS replies with 2.15 session records.
Usage: seed_2_15_corpus.py"""

import hashlib
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
# Order of CommandKind::ALL (control_reply's first byte is an index into it).
KINDS = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 13, 16, 17, 18, 19, 20, 21, 22]


def save(target, blob):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(blob).hexdigest()).write_bytes(blob)


def header(cmd, payload):
    return struct.pack(">QQII", 0, len(payload), cmd, 0) + payload


def create_2_15(name, host, base, live_us, fmt):
    names = [name.encode() + b"\0", host.encode() + b"\0", base.encode() + b"\0"]
    fixed = struct.pack(">IIII", *(len(n) for n in names), live_us)
    fixed += bytes([0, 0]) + bytes(range(1, 17))
    fixed += struct.pack(">QQ", 7, 1795414943) + bytes([1]) + struct.pack(">Q", 0)
    assert len(fixed) == 59
    return fixed + struct.pack(">I", fmt) + b"".join(names)


def record_2_15(sid, live_us, clients, streams, host, name, fmt):
    h, n = host.encode(), name.encode()
    return struct.pack(">QIIIIII", sid, live_us, clients, streams, len(h), len(n), fmt) + h + n


def main():
    for minor in (14, 15):
        save("control_command", bytes([minor]) + header(5, struct.pack(">II", 2, minor)))
        save("control_reply", bytes([KINDS.index(5), minor]) + struct.pack(">II", 2, 15))
    for fmt in (1, 2, 0, 3):
        p = create_2_15("auto-20261123-062223", "vm", "", 200000, fmt)
        save("control_command", bytes([15]) + header(2, p))
    # The 2.15 layout at minor 14, and a 2.15 payload whose name lengths disagree.
    save("control_command", bytes([14]) + header(2, create_2_15("s", "vm", "", 0, 2)))
    bad = bytearray(create_2_15("s", "vm", "", 0, 2))
    bad[0:4] = struct.pack(">I", 200)
    save("control_command", bytes([15]) + header(2, bytes(bad)))
    path = b"vm/auto-20261123-062223\0"
    reply = struct.pack(">QII", 1, 10, len(path)) + path
    save("control_reply", bytes([KINDS.index(2), 15]) + reply)
    # live_reply: high bit of the selector = minor 15; LIST_SESSIONS is command 2.
    recs = [
        record_2_15(1, 200000, 0, 3, "vm", "ctf2", 1),
        record_2_15(2, 200000, 1, 5, "vm", "ctf18", 0),
    ]
    save("live_reply", bytes([0x80 | 2]) + struct.pack(">I", 2) + b"".join(recs))
    save("live_reply", bytes([0x80 | 2]) + struct.pack(">I", 0))
    save("live_reply", bytes([0x80 | 2]) + struct.pack(">I", 1) + record_2_15(3, 1, 0, 0, "", "", 2))
    save("live_reply", bytes([0x80 | 1]) + struct.pack(">QIII", 1, 2, 15, 0))


if __name__ == "__main__":
    main()
