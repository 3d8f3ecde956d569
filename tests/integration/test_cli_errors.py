#!/usr/bin/env python3
"""shardctl fails clearly: a non-zero exit and a message that names the
problem, for a missing config, a key file others can read, a malformed object
id, and a get with the wrong key (authentication error, no output file)."""

import os
import secrets

from cluster import Cluster, assert_fails, run_tests


def test_missing_config(c: Cluster):
    missing = c.path('no-such.conf')
    for args in (['nodes'], ['put', '/etc/hostname'], ['get', '0' * 32, c.path('o')]):
        r = c.shardctl(*args, config=missing, check=False)
        assert_fails(c, r, 'no-such.conf')


def test_malformed_config(c: Cluster):
    bad = c.path('bad.conf')
    with open(bad, 'w') as f:
        f.write('[volume]\nk = "four"\n')
    assert_fails(c, c.shardctl('nodes', config=bad, check=False), 'bad.conf', 'k')


def test_key_file_readable_by_others(c: Cluster):
    key = os.path.join(c.dir, 'volume.key')
    src = c.random_file('obj', 100)
    os.chmod(key, 0o644)
    try:
        r = c.shardctl('put', src, check=False)
        assert_fails(c, r, 'permission', '0600', 'mode', 'readable')
    finally:
        os.chmod(key, 0o600)
    c.put(src)  # fine again


def test_bad_object_id(c: Cluster):
    for oid in ('not-an-id', '', 'zz' * 40, '00'):
        r = c.shardctl('get', oid, c.path('out'), check=False)
        assert_fails(c, r, 'object', 'id', 'invalid', 'malformed')
        assert not os.path.exists(c.path('out')), 'a failed get left an output file'


def test_missing_input_file(c: Cluster):
    assert_fails(c, c.shardctl('put', c.path('nope'), check=False), 'nope')


def test_wrong_key(c: Cluster):
    src = c.random_file('obj', 5000)
    oid = c.put(src)
    other_key = c.path('other.key')
    fd = os.open(other_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, f'shardfs-key-v1 {secrets.token_hex(32)}\n'.encode())
    os.close(fd)
    conf = c.write_config(c.path('other.conf'), [c.endpoint(i) for i in range(1, 7)],
                          key_file=other_key)
    out = c.path('out')
    r = c.shardctl('get', oid, out, config=conf, check=False)
    assert_fails(c, r, 'auth', 'wrong key')
    assert not os.path.exists(out) or os.path.getsize(out) == 0, \
        'a get with the wrong key wrote bytes'


def test_no_nodes_answer(c: Cluster):
    conf = c.write_config(c.path('dead.conf'), ['tcp://127.0.0.1:1'])
    r = c.shardctl('nodes', config=conf, check=False, timeout=120)
    if r.returncode == 0:
        assert 'down' in r.stdout.lower() or 'no' in r.stdout.lower(), r.stdout
    src = c.random_file('obj', 10)
    assert_fails(c, c.shardctl('put', src, config=conf, check=False, timeout=120),
           'unavailable', 'no node', 'answer', 'reach', 'connect')


if __name__ == '__main__':
    run_tests(globals())
