#!/usr/bin/env python3
"""Seeds corpus/<target>/ with the messages of the LTTng 2.13 fixture, prefixed with each
target's selector bytes (see README.md). Usage: seed_corpus.py [SHARED_DIR]"""

import hashlib
import pathlib
import struct
import sys

HERE = pathlib.Path(__file__).resolve().parent
SHARED = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "../../testdata/shared"
STREAMS = SHARED / "fixtures/lttng-2.13-live-uid/streams"
# Order of CommandKind::ALL.
KINDS = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 13, 16, 17, 18, 19, 20, 21, 22]
MINOR = 13


def save(target, blob):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(blob).hexdigest()).write_bytes(blob)


def reply_len(cmd, buf):
    if cmd == 5:
        return 8
    if cmd in (22, 1):
        return 12
    if cmd == 21:
        return 5
    if cmd == 2:
        return 16 + struct.unpack(">I", buf[12:16])[0]
    if cmd == 20:
        rc, n = struct.unpack(">II", buf[:8])
        return 8 + (n if rc == 10 else 0)
    return 4


def main():
    client = (STREAMS / "5342-0.client").read_bytes()
    server = (STREAMS / "5342-0.server").read_bytes()
    pos, rpos = 0, 0
    while pos < len(client):
        cmd = struct.unpack(">I", client[pos + 16 : pos + 20])[0]
        size = struct.unpack(">Q", client[pos + 8 : pos + 16])[0]
        msg = client[pos : pos + 24 + size]
        pos += len(msg)
        if cmd == 6:
            msg = msg[:24] + msg[24:36] + msg[36:100]
            msg = msg[:8] + struct.pack(">Q", len(msg) - 24) + msg[16:]
        save("control_command", bytes([MINOR]) + msg)
        if cmd != 6:
            n = reply_len(cmd, server[rpos:])
            save("control_reply", bytes([KINDS.index(cmd), MINOR]) + server[rpos : rpos + n])
            rpos += n
    assert rpos == len(server)
    data = (STREAMS / "5343-0.client").read_bytes()
    pos = 0
    while pos < len(data):
        size = struct.unpack(">I", data[pos + 24 : pos + 28])[0]
        save("data_header", data[pos : pos + 32] + data[pos + 32 : pos + 48])
        pos += 32 + size


if __name__ == "__main__":
    main()
