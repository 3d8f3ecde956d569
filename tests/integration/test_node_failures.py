#!/usr/bin/env python3
"""Issue 2 §5: nodes that die, hang or rot.

- SIGKILL 2 of 6 nodes (m = 2): every object still reads byte-exact.
- SIGSTOP 1 node: reads and writes finish in bounded time (the client times
  out and uses other nodes); SIGCONT and clean stop afterwards.
- One byte flipped in a shard file on disk: get still returns the right
  bytes, with up to m = 2 data shards damaged; with 3 it fails clearly.
"""

import os
import re
import signal
import time

from cluster import Cluster, assert_same, cluster_args, log, run_tests

# Generous: the client's per-request timeout is 5 s (client.conf), and a
# 3-segment object may meet it once per segment, plus retries.
BOUND_S = 60


def _put_set(c, sizes):
    objs = []
    for size in sizes:
        src = c.random_file(f'in-{size}', size)
        objs.append((src, c.put(src)))
    return objs


def _check_all(c, objs, tag, bound=None):
    for src, oid in objs:
        out = c.path(os.path.basename(src) + '.' + tag)
        r = c.get(oid, out, timeout=bound or 300)
        if bound:
            assert r.elapsed < bound, f'get took {r.elapsed:.1f} s (bound {bound} s)'
        assert_same(src, out)


def test_sigkill_two_nodes(c: Cluster):
    seg = c.segment_size()
    objs = _put_set(c, [1, 1000, seg - 1, seg, seg + 1, 3 * seg + 12345])
    _check_all(c, objs, 'before')
    c.kill(2)
    c.kill(5)
    assert not c.alive(2) and not c.alive(5)
    _check_all(c, objs, 'after')


def test_sigkill_other_pair(c: Cluster):
    # A different pair, including node-1 (every other node's bootstrap peer).
    src = c.random_file('obj', 3 * c.segment_size() // 2)
    oid = c.put(src)
    c.kill(1)
    c.kill(6)
    c.get(oid, c.path('out'))
    assert_same(src, c.path('out'))


@cluster_args(nodes=7)
def test_sigstop_one_node(c: Cluster):
    seg = c.segment_size()
    objs = _put_set(c, [1, seg + 1, 2 * seg + 7])
    victim = 3
    c.signal(victim, signal.SIGSTOP)
    try:
        _check_all(c, objs, 'stopped', bound=BOUND_S)
        # Writes: 7 nodes, one hung: the client must give up on it and place
        # the shard elsewhere.
        src = c.random_file('new', 2 * seg + 5)
        r = c.shardctl('put', src, timeout=BOUND_S + 30)
        assert r.elapsed < BOUND_S, f'put took {r.elapsed:.1f} s (bound {BOUND_S} s)'
        oid = r.stdout.strip().splitlines()[-1]
        out = c.path('new.out')
        r = c.get(oid, out, timeout=BOUND_S + 30)
        assert r.elapsed < BOUND_S, f'get took {r.elapsed:.1f} s'
        assert_same(src, out)
        log(f'with node-{victim} stopped: put and get finished')
    finally:
        c.signal(victim, signal.SIGCONT)


def test_sigstop_with_no_spare(c: Cluster):
    # 6 nodes, n = 6, one hung: a write cannot place 6 shards on 5 nodes.
    # It must end in bounded time, either OK or with a clear error.
    seg = c.segment_size()
    objs = _put_set(c, [seg + 1])
    c.signal(4, signal.SIGSTOP)
    try:
        _check_all(c, objs, 'stopped', bound=BOUND_S)
        src = c.random_file('new', 1000)
        r = c.shardctl('put', src, check=False, timeout=BOUND_S + 30)
        assert r.elapsed < BOUND_S, f'put took {r.elapsed:.1f} s (bound {BOUND_S} s)'
        if r.returncode != 0:
            assert r.stderr.strip(), 'put failed without a message'
            log(f'put with 5 of 6 nodes answering failed as allowed: {r.stderr.strip()}')
    finally:
        c.signal(4, signal.SIGCONT)


def _shards_of_stripe(c):
    files = c.shard_files()
    stripes = {}
    for f in files:
        m = re.fullmatch(r'([0-9a-f]{32})\.(\d+)', os.path.basename(f))
        if m:
            stripes.setdefault(m.group(1), []).append((int(m.group(2)), f))
    return stripes


def _data_stripe(c):
    """(index, path) of every shard of the object's one data stripe: the
    stripe with the largest shard files (the other one is the manifest)."""
    stripes = _shards_of_stripe(c)
    assert stripes, 'no shard files on disk'
    best = max(stripes.values(), key=lambda shards: sum(os.path.getsize(p) for _, p in shards))
    return sorted(best)


def _flip(path, offset):
    with open(path, 'r+b') as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


def test_flipped_bytes(c: Cluster):
    # Data shard 0, then data shard 2 (m = 2 of them) go bad, each followed by
    # a byte-exact get. Nodes heal a shard they found corrupt on their own
    # (the repairer), so the last step damages three shards at once: one
    # too many for any rebuild, which get must report clearly, leaving no
    # output and never returning wrong bytes.
    size = 1024 * 1024 + 17  # one data segment: 6 shards of ~256 KiB
    src = c.random_file('obj', size)
    oid = c.put(src)
    shards = dict(_data_stripe(c))
    assert sorted(shards) == list(range(6)), f'expected shards 0..5, found {sorted(shards)}'
    for index in (0, 2):
        _flip(shards[index], os.path.getsize(shards[index]) // 2)
        out = c.path(f'out-{index}')
        c.get(oid, out)
        assert_same(src, out)
    assert c.logs_contain(r'corrupt'), 'no node log reports the corrupt shards'
    shards = dict(_data_stripe(c))
    for index in (0, 1, 2):
        _scribble(shards[index], os.path.getsize(shards[index]) // 3)
    out = c.path('out-too-many')
    r = c.get(oid, out, check=False)
    assert r.returncode != 0, 'get succeeded with 3 of 6 shards damaged (m = 2)'
    assert 'corrupt' in r.stderr.lower() or 'unavailable' in r.stderr.lower(), r.stderr
    assert not os.path.exists(out), 'a failed get left its output file'


def _scribble(path, offset):
    """Overwrites 64 bytes with random ones: damaged whatever state the
    file was in (a second _flip would undo the first)."""
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(os.urandom(64))


if __name__ == '__main__':
    run_tests(globals())
