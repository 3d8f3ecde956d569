#!/usr/bin/env python3
"""Issue 2 §5: put/get byte-exact round trips on 6 nodes, k=4, m=2, and
`shardctl nodes` lists all six."""

import time

from cluster import Cluster, assert_same, log, run_tests


def test_edge_sizes(c: Cluster):
    seg = c.segment_size()
    sizes = [0, 1, seg - 1, seg, seg + 1, 2 * seg + 3]
    ids = {}
    for size in sizes:
        src = c.random_file(f'in-{size}', size)
        ids[size] = (src, c.put(src))
    for size, (src, oid) in ids.items():
        out = c.path(f'out-{size}')
        c.get(oid, out)
        assert_same(src, out)
    # Two puts of the same bytes are two objects that both read back.
    src = ids[1][0]
    oid2 = c.put(src)
    assert oid2 != ids[1][1], 'a second put returned the same object id'
    c.get(oid2, c.path('again'))
    assert_same(src, c.path('again'))


def test_100_mib(c: Cluster):
    size = 100 * 1024 * 1024
    src = c.random_file('big', size)
    t0 = time.monotonic()
    oid = c.put(src)
    t_put = time.monotonic() - t0
    out = c.path('big.out')
    t0 = time.monotonic()
    c.get(oid, out)
    t_get = time.monotonic() - t0
    assert_same(src, out)
    log(f'100 MiB: put {t_put:.1f} s ({100 / t_put:.0f} MiB/s), '
        f'get {t_get:.1f} s ({100 / t_get:.0f} MiB/s)')


def test_nodes_lists_six(c: Cluster):
    r = c.shardctl('nodes')
    for i in range(1, 7):
        ep = c.endpoint(i)
        assert ep in r.stdout, f'node-{i} ({ep}) missing from shardctl nodes:\n{r.stdout}'
    lines = [l for l in r.stdout.splitlines() if '127.0.0.1' in l]
    assert len(lines) == 6, f'expected 6 node lines, got {len(lines)}:\n{r.stdout}'


if __name__ == '__main__':
    run_tests(globals())
