#!/usr/bin/env python3
"""Writes the seed corpus for wire_decode_fuzz: one valid encoding of every
message in lib/PROTOCOL.md, plus a bare locator and a few edge cases.

Written from PROTOCOL.md, not from the C++ code, so it is a second reading
of the document: the wire_corpus_replay test requires every seed_* file to
decode in full. When the format changes, change PROTOCOL.md, this file and
the codec together, then rerun it. Usage: tests/fuzz/gen_seeds.py [OUT_DIR]
"""
import os
import struct
import sys

PING, PUT, GET, DELETE, STAT, LIST = 1, 2, 3, 4, 5, 6
PEERS, SYNC_LOCATOR, NODE_STATS, LIST_HOLDINGS = 7, 8, 9, 10
REPLY = 0x01


def header(command, reply, request_id, status=0, version=1, compat=1):
    # PROTOCOL.md §3
    return (b"SHFS" + struct.pack("<BBBBQB3x", version, compat, command,
                                  REPLY if reply else 0, request_id, status))


def envelope(fields, version=1, compat=1):
    # PROTOCOL.md §3.2
    return struct.pack("<BBI", version, compat, len(fields)) + fields


def lp(s):
    # PROTOCOL.md §2: u32 length, then the bytes
    return struct.pack("<I", len(s)) + s


def stripe(seed):
    return bytes((seed + 7 * i) & 0xFF for i in range(16))


def locator(sid, k=4, m=2, shard_size=1 << 20, version=3):
    # PROTOCOL.md §4.9
    out = sid + struct.pack("<IBBII", version, k, m, shard_size,
                            k * shard_size - 100)
    for i in range(k + m):
        out += struct.pack("<QI", 0x0101010101010101 * (i + 1), 0xABCD0000 + i)
        out += bytes([0x40 + i]) * 32
    return out


def msg(command, reply, fields, request_id=0x1122334455667788, **kw):
    return header(command, reply, request_id) + envelope(fields, **kw)


def seeds():
    s1 = stripe(1)
    key = b"Z" * 40
    yield "ping_request", msg(PING, False, b"")
    yield "ping_reply", msg(PING, True,
                            struct.pack("<Q", 0xFEEDFACECAFEBEEF) + lp(b"house-2") +
                            struct.pack("<QQQQ", 1 << 40, 12345, (1 << 40) - 12345, 42) +
                            lp(key) + lp(b"tcp://127.0.0.1:40001"))
    yield "put_request", msg(PUT, False,
                             s1 + struct.pack("<BI", 5, 0xDEADBEEF) + lp(key) + locator(s1))
    yield "put_reply", msg(PUT, True, b"")
    yield "get_request", msg(GET, False, stripe(2) + struct.pack("<BQQ", 3, 4096, 8192))
    yield "get_reply", msg(GET, True, struct.pack("<QI", 1 << 20, 0x12345678))
    yield "delete_request", msg(DELETE, False, stripe(3) + struct.pack("<B", 63) + lp(key))
    yield "delete_reply", msg(DELETE, True, b"")
    yield "stat_request", msg(STAT, False, stripe(4) + b"\x01")
    yield "stat_reply", msg(STAT, True,
                            struct.pack("<QI", 1 << 20, 0x0BADF00D) + lp(key) +
                            struct.pack("<Q", 1700000000123) + locator(stripe(4)))
    yield "list_request", msg(LIST, False,
                              b"\x03" + stripe(5) + stripe(6) + struct.pack("<BI", 2, 1000))
    entries = b"".join(stripe(10 + i) + struct.pack("<BQI", i, 1000 + i, 7 + i)
                       for i in range(3))
    yield "list_reply", msg(LIST, True, struct.pack("<BIH", 1, 3, 29) + entries)
    # §7: a newer body version with a grown entry and a trailing field.
    grown = b"".join(stripe(20 + i) + struct.pack("<BQI", i, 5, 1) + b"new"
                     for i in range(2))
    yield "list_reply_v2", msg(LIST, True,
                               struct.pack("<BIH", 0, 2, 32) + grown + b"\xff\xff",
                               version=2, compat=1)
    yield "error_reply", (header(DELETE, True, 99, status=8) +
                          envelope(lp(b"owner mismatch")))
    yield "locator", locator(stripe(7), k=10, m=4, shard_size=65536, version=9)
    # §4.10: peer entries are length-prefixed (u16) so newer fields can follow.
    def peer(node, state, endpoint, zone):
        e = (struct.pack("<QBQQ", node, state, 1700000000000 + node, 250 * state) +
             lp(endpoint) + lp(zone) + struct.pack("<QQQQ", 1 << 30, 1 << 20, (1 << 30) - (1 << 20), 9))
        return struct.pack("<H", len(e)) + e
    yield "peers_request", msg(PEERS, False, struct.pack("<BI", 1, 2) +
                               peer(11, 0, b"tcp://127.0.0.1:4001", b"zone-a") +
                               peer(12, 1, b"tcp://127.0.0.1:4002", b"zone-b"))
    yield "peers_client_request", msg(PEERS, False, struct.pack("<BI", 0, 0))
    yield "peers_reply", msg(PEERS, True, struct.pack("<I", 1) +
                             peer(13, 0, b"tcp://127.0.0.1:4003", b"zone-c"))
    # §4.11
    yield "sync_locator_request", msg(SYNC_LOCATOR, False,
                                      stripe(8) + b"\x01" + locator(stripe(8), version=4))
    yield "sync_locator_reply", msg(SYNC_LOCATOR, True,
                                    b"\x01" + locator(stripe(9), k=3, m=2, version=5) +
                                    struct.pack("<QQ", 0b10110, 0b00001))
    # §4.12, §4.13
    yield "node_stats_request", msg(NODE_STATS, False, b"")
    yield "node_stats_reply", msg(NODE_STATS, True, struct.pack("<10Q", *range(1, 11)))
    holdings = b"".join(stripe(30 + i) + struct.pack("<BQIBBB", i, 4096, 0xC0 + i, 4, 2, 2)
                        for i in range(2))
    yield "list_holdings_reply", msg(LIST_HOLDINGS, True, struct.pack("<BIH", 0, 2, 32) + holdings)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "wire")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, "seed_" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
