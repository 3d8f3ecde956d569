#!/usr/bin/env python3
"""Transport security (SECURITY.md): clients without the network key or with
another network's key are refused with a clear message; a node of another
network cannot join; invite tokens work; the per-peer cap is configurable.
Ownership (another client's key cannot delete or overwrite) and the BUSY
reply are checked frame by frame in tests/netnode/curve_server_test.cc."""

import base64
import hashlib
import os
import secrets
import time

from cluster import Cluster, NODE, assert_fails, cluster_args, run_tests


def _token(endpoint=''):
    """A join token of a brand-new network (curve_keys.h format)."""
    body = secrets.token_bytes(32) + bytes(32) + endpoint.encode()
    body += hashlib.sha256(body).digest()[:4]
    return 'shardfs1.' + base64.urlsafe_b64encode(body).decode().rstrip('=')


def _write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    return path


def _config_with_network(c, name, network_file):
    conf = c.write_config(c.path(name), [c.endpoint(i) for i in range(1, c.nodes + 1)])
    with open(conf) as f:
        text = f.read()
    lines = [ln for ln in text.splitlines() if not ln.startswith('network_file')]
    if network_file:
        lines.append(f'network_file = "{network_file}"')
    with open(conf, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return conf


def test_no_network_key(c: Cluster):
    src = c.random_file('obj', 5000)
    oid = c.put(src)
    os.environ['SHARDFS_NETWORK_FILE'] = ''  # no fallback for this test
    try:
        conf = _config_with_network(c, 'nokey.conf', None)
        assert_fails(c, c.shardctl('put', src, config=conf, check=False), 'network')
        assert_fails(c, c.shardctl('get', oid, c.path('out'), config=conf, check=False), 'network')
        assert_fails(c, c.shardctl('nodes', config=conf, check=False), 'network')
    finally:
        del os.environ['SHARDFS_NETWORK_FILE']


def test_wrong_network(c: Cluster):
    src = c.random_file('obj', 5000)
    oid = c.put(src)
    wrong = _write_private(c.path('wrong.token'), _token(c.endpoint(1)) + '\n')
    conf = _config_with_network(c, 'wrong.conf', wrong)
    r = c.shardctl('put', src, config=conf, check=False, timeout=120)
    assert_fails(c, r, 'handshake', 'network key')
    out = c.path('out')
    r = c.shardctl('get', oid, out, config=conf, check=False, timeout=120)
    assert_fails(c, r, 'handshake', 'network key')
    assert not os.path.exists(out) or os.path.getsize(out) == 0
    # The right network still works.
    c.get(oid, c.path('ok'))


def test_network_file_mode(c: Cluster):
    token = os.path.join(c.dir, 'network.token')
    os.chmod(token, 0o644)
    try:
        assert_fails(c, c.shardctl('nodes', check=False), 'chmod 600', 'group or others')
    finally:
        os.chmod(token, 0o600)


def test_invite(c: Cluster):
    node1 = c.node_dir(1)
    r = c.shardctl('invite', '--dir', node1, config=None)
    assert r.stdout.strip().startswith('shardfs1.'), r.stdout
    out = c.path('invited.token')
    c.shardctl('invite', '--dir', node1, '--output', out, config=None)
    assert os.stat(out).st_mode & 0o777 == 0o600
    conf = _config_with_network(c, 'invited.conf', out)
    src = c.random_file('obj', 3000)
    oid = c.shardctl('put', src, config=conf).stdout.strip().split()[-1]
    c.shardctl('get', oid, c.path('back'), config=conf)
    with open(src, 'rb') as a, open(c.path('back'), 'rb') as b:
        assert a.read() == b.read()
    assert_fails(c, c.shardctl('invite', '--dir', c.path('nowhere'), config=None, check=False),
           'network')


@cluster_args(nodes=6)
def test_outside_node_cannot_join(c: Cluster):
    extra = os.path.join(c.tmp, 'outsider')
    os.makedirs(extra)
    _write_private(os.path.join(extra, 'network.token'), _token() + '\n')
    c.start(dir=extra, nodes=1, extra=['--node-arg=--peer=' + c.endpoint(1),
                                       '--node-arg=--heartbeat-ms=100'])
    time.sleep(3)
    r = c.shardctl('nodes')
    outsider = open(os.path.join(extra, 'node-1', 'endpoint')).read().strip()
    assert outsider not in r.stdout, f'outsider listed:\n{r.stdout}'
    with open(os.path.join(extra, 'node-1', 'log')) as f:
        log = f.read()
    assert 'learned of peer' not in log, log[-2000:]
    # A token of the right network is refused by a data dir of another one.
    import subprocess
    good = c.shardctl('invite', '--dir', c.node_dir(1), config=None).stdout.strip()
    p = subprocess.run([NODE, '--data-dir', os.path.join(extra, 'node-1'), '--join', good],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert 'already belongs to network' in p.stderr + p.stdout or 'lock' in (p.stderr + p.stdout)


def test_per_peer_cap_flag(c: Cluster):
    p = __import__('subprocess').run([NODE, '--data-dir', c.path('capdir'),
                                      '--max-requests-per-peer', '0'],
                                     capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, p
    assert 'max-requests-per-peer' in p.stderr, p.stderr
    r = __import__('subprocess').run([NODE, '--help'], capture_output=True, text=True)
    assert '--max-requests-per-peer' in r.stdout and '--join' in r.stdout


if __name__ == '__main__':
    run_tests(globals())
