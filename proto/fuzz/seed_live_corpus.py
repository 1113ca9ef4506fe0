#!/usr/bin/env python3
"""Seeds corpus/ for the live and CTF targets (live_request, live_reply, index_file,
packet_header) from the LTTng 2.13 fixture: one request of each command, one reply of each
shape (prefixed with the answered command number, the live_reply selector byte), the index
files, the first packet header of each data file and the metadata file.
Usage: seed_live_corpus.py [SHARED_DIR]"""

import hashlib
import pathlib
import struct
import sys

HERE = pathlib.Path(__file__).resolve().parent
SHARED = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "../../../shared"
FIXTURE = SHARED / "fixtures/lttng-2.13-live-uid"
TRACE = FIXTURE / "relay-out/vm/fx3754-20261123-062223/ust/uid/0/64-bit"


def save(target, blob):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(blob).hexdigest()).write_bytes(blob)


def reply_len(cmd, buf):
    if cmd == 1:
        return 20
    if cmd in (8, 9):
        return 4
    if cmd == 2:
        return 4 + 339 * struct.unpack_from(">I", buf)[0]
    if cmd in (3, 7):
        return 8 + 4371 * struct.unpack_from(">I", buf, 4)[0]
    if cmd == 4:
        return 64
    if cmd == 5:
        return 12 + struct.unpack_from(">I", buf, 4)[0]
    if cmd == 6:
        return 12 + struct.unpack_from(">Q", buf)[0]
    raise ValueError(cmd)


def main():
    client = (FIXTURE / "streams/5344-0.client").read_bytes()
    server = (FIXTURE / "streams/5344-0.server").read_bytes()
    pos = rpos = 0
    seen_req, seen_rep = set(), set()
    while pos < len(client):
        size, cmd = struct.unpack_from(">QI", client, pos)
        req = client[pos : pos + 16 + size]
        pos += len(req)
        n = reply_len(cmd, server[rpos:])
        rep = server[rpos : rpos + n]
        rpos += n
        if cmd not in seen_req:
            seen_req.add(cmd)
            save("live_request", req)
        key = (cmd, len(rep), rep[56:60] if cmd == 4 else b"")
        if key not in seen_rep and len(rep) <= 12 + 16384:
            seen_rep.add(key)
            save("live_reply", bytes([cmd]) + rep)
    assert rpos == len(server)
    save("live_request", client[:200])
    save("live_reply", bytes([10]) + struct.pack(">I", 11))
    for name in ("channel0_0", "channel0_1"):
        save("index_file", (TRACE / "index" / (name + ".idx")).read_bytes())
        save("packet_header", (TRACE / name).read_bytes()[:84])
    save("packet_header", (TRACE / "metadata").read_bytes())


if __name__ == "__main__":
    main()
