#!/usr/bin/env python3
"""Issue 2 §5: a node at its quota. The upload goes to another node, or
fails with a clear error; nothing that was acknowledged is lost."""

import os

from cluster import Cluster, assert_same, cluster_args, log, run_tests

TINY = '64K'  # far below one 1 MiB object's ~256 KiB shard
# A clear error names the cause (paths removed before matching).
SPACE_WORDS = ('space', 'quota', 'full', 'capacity', 'bytes free')


def _tiny_node(c):
    """Starts one extra node with a tiny quota (its own cluster dir) and
    returns its endpoint."""
    extra = os.path.join(c.tmp, 'tiny')
    c.start(dir=extra, nodes=1, capacity=TINY)
    return c.endpoint(1, dir=extra)


def _used_bytes(c, endpoint, conf):
    r = c.shardctl('nodes', '--bytes', config=conf)
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 8 and f[1] == endpoint:
            return int(f[4])
    raise AssertionError(f'{endpoint} not in shardctl nodes:\n{r.stdout}')


def test_full_node_is_avoided(c: Cluster):
    # 6 normal nodes + 1 tiny one: placement must skip the tiny node.
    tiny = _tiny_node(c)
    endpoints = [c.endpoint(i) for i in range(1, 7)] + [tiny]
    conf = c.write_config(c.path('seven.conf'), endpoints)
    r = c.shardctl('nodes', config=conf)
    assert tiny in r.stdout, f'the tiny node is not listed:\n{r.stdout}'
    objs = []
    for n in range(4):
        src = c.random_file(f'obj{n}', 1024 * 1024 + n)
        objs.append((src, c.put(src, config=conf)))
    for src, oid in objs:
        out = src + '.out'
        c.get(oid, out, config=conf)
        assert_same(src, out)
    assert _used_bytes(c, tiny, conf) <= 64 * 1024, 'the tiny node went over its quota'


def test_full_node_without_spare(c: Cluster):
    # 5 normal nodes + the tiny one: 6 shards need all 6 nodes, and one is
    # full. Success (if the client found room after all) must round-trip;
    # failure must say why.
    tiny = _tiny_node(c)
    endpoints = [c.endpoint(i) for i in range(1, 6)] + [tiny]
    conf = c.write_config(c.path('six.conf'), endpoints)
    src = c.random_file('obj', 1024 * 1024)
    r = c.shardctl('put', src, config=conf, check=False, timeout=120)
    if r.returncode == 0:
        oid = r.stdout.strip().splitlines()[-1]
        c.get(oid, c.path('out'), config=conf)
        assert_same(src, c.path('out'))
        log('put succeeded despite the full node')
    else:
        msg = r.stderr.replace(c.tmp, 'TMP').lower()
        assert any(w in msg for w in SPACE_WORDS), \
            f'put failed without naming the cause (space/quota): {r.stderr}'
        log(f'put failed clearly: {r.stderr.strip()}')
    assert _used_bytes(c, tiny, conf) <= 64 * 1024, 'the tiny node went over its quota'
    # The tiny node is still alive and the others still serve.
    src2 = c.random_file('small', 10)
    oid2 = c.put(src2)
    c.get(oid2, c.path('small.out'))
    assert_same(src2, c.path('small.out'))


@cluster_args(capacity=TINY)
def test_every_node_full(c: Cluster):
    # No node can take a ~256 KiB shard: put must fail and say why.
    src = c.random_file('obj', 1024 * 1024)
    r = c.shardctl('put', src, check=False, timeout=120)
    assert r.returncode != 0, 'put succeeded on nodes with a 64 KiB quota'
    msg = r.stderr.replace(c.tmp, 'TMP').lower()
    assert any(w in msg for w in SPACE_WORDS), \
        f'put failed without naming the cause (space/quota): {r.stderr}'
    log(f'put failed clearly: {r.stderr.strip()}')
    for i in range(1, 7):
        assert c.alive(i)
        assert _used_bytes(c, c.endpoint(i), c.config) <= 64 * 1024


if __name__ == '__main__':
    run_tests(globals())
