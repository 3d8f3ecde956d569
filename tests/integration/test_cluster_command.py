#!/usr/bin/env python3
"""`shardctl cluster start|stop|status`: the local cluster tool itself."""

import os
import signal
import stat
import time

from cluster import NODE, Cluster, _started, no_start, node_alive, run_tests


def _lingering(c):
    return [d for d in Cluster.node_dirs(c.dir)
            if (pid := Cluster.read_pid(d)) and node_alive(pid, d)]


def test_layout(c: Cluster):
    for i in range(1, 7):
        d = c.node_dir(i)
        for f in ('pid', 'endpoint', 'log'):
            assert os.path.exists(os.path.join(d, f)), f'{d}/{f} missing'
        assert c.alive(i)
        assert c.endpoint(i).startswith('tcp://127.0.0.1:')
    key = os.path.join(c.dir, 'volume.key')
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    with open(c.config) as f:
        conf = f.read()
    for i in range(1, 7):
        assert c.endpoint(i) in conf
    ports = {c.port(i) for i in range(1, 7)}
    assert len(ports) == 6


def test_refuses_second_start(c: Cluster):
    pids = [c.pid(i) for i in range(1, 7)]
    r = c.shardctl('cluster', 'start', '--dir', c.dir, '--nodes', 6, '--node-binary', NODE,
                   config=None, check=False)
    assert r.returncode != 0
    assert 'already running' in r.stderr, r.stderr
    assert [c.pid(i) for i in range(1, 7)] == pids
    assert all(c.alive(i) for i in range(1, 7))


def test_status_stop_restart(c: Cluster):
    r = c.shardctl('cluster', 'status', '--dir', c.dir, config=None)
    assert r.stdout.count(' up ') == 6, r.stdout
    key_before = open(os.path.join(c.dir, 'volume.key')).read()
    src = c.random_file('obj', 1000)
    c.put(src)
    c.kill(3)
    r = c.shardctl('cluster', 'status', '--dir', c.dir, config=None, check=False)
    assert r.returncode != 0 and 'down' in r.stdout, r.stdout
    r = c.shardctl('cluster', 'stop', '--dir', c.dir, config=None)
    assert 'stopped 5' in r.stdout and '1 were not running' in r.stdout, r.stdout
    assert not _lingering(c)
    assert not any(os.path.exists(os.path.join(d, 'pid')) for d in Cluster.node_dirs(c.dir))
    r = c.shardctl('cluster', 'stop', '--dir', c.dir, config=None)
    assert 'stopped 0' in r.stdout
    # Restart on the same dir: same key, new ports; a stopped node
    # (SIGSTOP) is still stopped cleanly.
    c.start()
    assert open(os.path.join(c.dir, 'volume.key')).read() == key_before
    os.kill(c.pid(2), signal.SIGSTOP)
    t0 = time.monotonic()
    c.shardctl('cluster', 'stop', '--dir', c.dir, config=None)
    assert time.monotonic() - t0 < 15
    assert not _lingering(c)


@no_start
def test_node_that_exits(c: Cluster):
    fake = c.path('fake-node')
    with open(fake, 'w') as f:
        f.write('#!/bin/sh\necho "fake node: cannot start, args: $*" >&2\nexit 3\n')
    os.chmod(fake, 0o755)
    r = c.shardctl('cluster', 'start', '--dir', c.dir, '--nodes', 3, '--node-binary', fake,
                   config=None, check=False)
    assert r.returncode != 0
    assert 'exited with status 3' in r.stderr, r.stderr
    assert 'fake node: cannot start' in r.stderr, 'log tail missing from the error'


@no_start
def test_node_that_hangs(c: Cluster):
    # A "node" that never writes its endpoint and has a child of its own:
    # start must give up in time and kill both (the node's process group).
    fake, pids = c.path('fake-node'), c.path('fake-pids')
    with open(fake, 'w') as f:
        f.write('#!/bin/sh\necho "fake node: hanging"\n'
                f'echo $$ >> {pids}\nsleep 600 &\necho $! >> {pids}\nwait\n')
    os.chmod(fake, 0o755)
    t0 = time.monotonic()
    r = c.shardctl('cluster', 'start', '--dir', c.dir, '--nodes', 2, '--node-binary', fake,
                   '--timeout-ms', 1000, config=None, check=False)
    assert time.monotonic() - t0 < 10
    assert r.returncode != 0
    assert 'within 1000 ms' in r.stderr and 'fake node: hanging' in r.stderr, r.stderr
    with open(pids) as f:
        started = [int(p) for p in f.read().split()]
    assert len(started) >= 2, started
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(os.path.exists(f'/proc/{p}') for p in started):
        time.sleep(0.05)
    left = [p for p in started if os.path.exists(f'/proc/{p}')]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f'processes left behind: {left}'


@no_start
def test_missing_node_binary(c: Cluster):
    r = c.shardctl('cluster', 'start', '--dir', c.dir, '--node-binary', c.path('nope'),
                   config=None, check=False)
    assert r.returncode != 0 and 'nope' in r.stderr, r.stderr


@no_start
def test_bench_data_suite(c: Cluster):
    """shardctl bench runs its stages on clusters of its own (with and without
    CURVE), checks every byte it gets back, prints the ratios and removes its
    temp dir and processes."""
    r = c.shardctl('bench', '--size', '16M', '--dir', c.tmp, config=None, timeout=600)
    for row in ('put (pipelined)', 'get (4 readers)', 'put, no CURVE', 'get, no CURVE',
                'CURVE cost on put:', 'CURVE cost on get:', 'put / local write+fsync:'):
        assert row in r.stdout, f'{row!r} missing from:\n{r.stdout}'
    assert 'n/a' not in r.stdout, r.stdout
    left = [e for e in os.listdir(c.tmp) if e.startswith('shardctl-bench-')]
    assert not left, f'bench left {left} behind'
    procs = [p for p in os.listdir('/proc') if p.isdigit()]
    for p in procs:
        try:
            with open(f'/proc/{p}/cmdline', 'rb') as f:
                assert c.tmp.encode() not in f.read(), f'process {p} of the bench still runs'
        except OSError:
            pass


if __name__ == '__main__':
    run_tests(globals())
