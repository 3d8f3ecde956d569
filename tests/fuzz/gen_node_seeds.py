#!/usr/bin/env python3
"""Writes the seed corpus for node_request_fuzz: short request sessions in
the input format node_request_fuzz.cc describes (per request: u8 flags,
u16 header length, u32 payload length, header, payload).

Each seed_* session must be answered OK in every request (the corpus replay
test checks it), so the seeds exercise the store's real paths: PUT a shard,
GET it whole and in part, STAT, LIST, SYNC_LOCATOR, DELETE by its owner.
Messages come from gen_seeds.py (written from PROTOCOL.md).
Usage: tests/fuzz/gen_node_seeds.py [OUT_DIR]
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_seeds as g  # noqa: E402


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def request(header, payload=None, extra=False):
    flags = (1 if payload is not None else 0) | (2 if extra else 0)
    payload = payload or b""
    return struct.pack("<BHI", flags, len(header), len(payload)) + header + payload


def small_locator(sid, payload, k=2, m=1, version=3):
    # PROTOCOL.md §4.9, with every shard's CRC and hash set to `payload`'s
    # (the node checks only its own shard's CRC against the payload).
    import hashlib
    crc = crc32c(payload)
    out = sid + struct.pack("<IBBII", version, k, m, len(payload), k * len(payload) - 3)
    for i in range(k + m):
        out += struct.pack("<QI", 0x0101010101010101 * (i + 1), crc)
        out += hashlib.sha256(payload).digest()
    return out


def put(sid, index, payload, owner, rid=1):
    fields = (sid + struct.pack("<BI", index, crc32c(payload)) + g.lp(owner) +
              small_locator(sid, payload))
    return request(g.msg(g.PUT, False, fields, request_id=rid), payload)


def get(sid, index, offset=0, length=0, rid=2):
    return request(g.msg(g.GET, False, sid + struct.pack("<BQQ", index, offset, length),
                         request_id=rid))


def stat(sid, index, rid=3):
    return request(g.msg(g.STAT, False, sid + struct.pack("<B", index), request_id=rid))


def delete(sid, index, owner, rid=4):
    return request(g.msg(g.DELETE, False, sid + struct.pack("<B", index) + g.lp(owner),
                         request_id=rid))


def seeds():
    owner = b"Z" * 40
    payload = bytes((7 * i + 3) & 0xFF for i in range(64))
    for n in range(3):
        sid = g.stripe(100 + n)
        yield "session_%d" % n, (put(sid, n, payload, owner) + get(sid, n) +
                                 get(sid, n, 8, 16) + stat(sid, n) + delete(sid, n, owner))
    sid = g.stripe(110)
    yield "session_list", (put(sid, 0, payload, owner) +
                           request(g.msg(g.LIST, False, b"\x03" + g.stripe(0) + b"\xff" * 16 +
                                         struct.pack("<BI", 0, 1000))) +
                           request(g.msg(g.LIST_HOLDINGS, False, b"\x03" + g.stripe(0) +
                                         b"\xff" * 16 + struct.pack("<BI", 0, 1000))) +
                           request(g.msg(g.SYNC_LOCATOR, False,
                                         sid + b"\x01" + small_locator(sid, payload, version=4))) +
                           delete(sid, 0, owner))
    yield "session_ping", (request(g.msg(g.PING, False, b"")) +
                           request(g.msg(g.NODE_STATS, False, b"")) +
                           request(g.msg(g.PEERS, False, struct.pack("<BI", 0, 0))))
    # Not seed_*: inputs that must be refused, starting points for mutation.
    yield "bad_extra_frame", request(g.msg(g.PING, False, b""), extra=True)
    yield "bad_put_no_payload", request(g.msg(g.PUT, False, b""))
    yield "bad_wrong_crc", put(g.stripe(120), 0, payload, owner)[:-1] + b"\x00"
    yield "bad_get_missing", get(g.stripe(121), 0)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "node")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        prefix = "" if name.startswith("bad_") else "seed_"
        with open(os.path.join(out, prefix + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
