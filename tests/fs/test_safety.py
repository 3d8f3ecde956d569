"""Safety of a shardfs mount on a real local cluster (issue 3, Safety):
kill -9 of the mount during an rsync, nodes down (reads with m down, writes
queued with more down and completed once they are back), `shardctl cache
drop` while mounted, `shardctl sync` and `shardctl stat`, and close in
upload=sync mode while too few nodes answer.

A second mount of the same volume is tested in test_posix.py
(test_lease_refuses_second_mount).

Run: python3 tests/fs/test_safety.py [test_name ...]
"""

import os
import signal
import sqlite3
import subprocess
import threading
import time

import cluster as cluster_mod
from fsmount import log, mount_opts, run_fs_tests

TREE = os.environ.get('SHARDFS_RSYNC_TREE', '/usr/include')


def write(path, data):
    with open(path, 'wb') as f:
        f.write(data)


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def status(path):
    return os.getxattr(path, 'user.shardfs.status').decode()


def drive(c, m, *args, check=True, timeout=300):
    """shardctl --config C --state STATE ARGS (the mount's own state dir)."""
    return c.shardctl('--state', m.state, *args, check=check, timeout=timeout)


def meta_db(m):
    # Read-only beside the mount (WAL): never take a write lock here.
    return sqlite3.connect(f'file:{os.path.join(m.state, "meta.db")}?mode=ro', uri=True,
                           timeout=10)


def staging_orphans(m):
    """Staging files no segment row references (METADATA.md §3)."""
    db = meta_db(m)
    try:
        ids = {r[0] for r in db.execute(
            'SELECT staging_id FROM segments WHERE staging_id IS NOT NULL')}
    finally:
        db.close()
    on_disk = os.listdir(os.path.join(m.state, 'staging'))
    return [n for n in on_disk if int(n, 16) not in ids]


def cache_entries(m):
    d = os.path.join(m.state, 'cache')
    return [n for n in os.listdir(d) if not n.startswith('.')] if os.path.isdir(d) else []


def restartable(c, i):
    """The command line of node i, to start it again on the same port."""
    with open(f'/proc/{c.pid(i)}/cmdline', 'rb') as f:
        argv = [a.decode() for a in f.read().split(b'\0') if a]
    ep = c.endpoint(i)
    return [ep if a == 'tcp://127.0.0.1:0' else a for a in argv]


def restart_node(c, i, argv):
    node_dir = c.node_dir(i)
    with open(os.path.join(node_dir, 'log'), 'ab') as logf:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                             start_new_session=True)
    cluster_mod._started.add((p.pid, node_dir))  # killed at exit whatever happens
    # The node rewrites its pid file; until then the fixture's stop needs it.
    with open(os.path.join(node_dir, 'pid'), 'w') as f:
        f.write(f'{p.pid}\n')
    import socket
    port = c.port(i)
    deadline = time.monotonic() + 30
    while True:
        assert p.poll() is None, f'node-{i} exited {p.returncode} on restart'
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return p
        except OSError:
            assert time.monotonic() < deadline, f'node-{i} does not listen on {port}'
            time.sleep(0.1)


# --- kill -9 during rsync ---------------------------------------------------------

def test_kill9_during_rsync(c, m):
    dst = m.path('tree')
    # %n is logged as the receiver starts a file; it works on one file at a
    # time, so every name logged before the last one was closed and renamed
    # into place before the kill.
    rs = subprocess.Popen(['rsync', '-a', '--out-format=%n', TREE + '/', dst + '/'],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    reported = []
    reader = threading.Thread(target=lambda: reported.extend(l.rstrip('\n') for l in rs.stdout))
    try:
        reader.start()
        deadline = time.monotonic() + 30
        while len(reported) < 400 and rs.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rs.poll() is None, 'rsync finished before the kill: use a bigger tree'
        m.kill9()
        cut = len(reported)
    finally:
        try:
            rs.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rs.kill()
            rs.wait()
        reader.join()
    done = [n for n in reported[:cut - 1] if os.path.isfile(os.path.join(TREE, n))
            and not os.path.islink(os.path.join(TREE, n))]
    log(f'killed the mount after {cut} names from rsync ({len(done)} closed files)')

    db = sqlite3.connect(os.path.join(m.state, 'meta.db'))
    assert db.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
    pending_before = db.execute('SELECT COUNT(*) FROM upload_queue').fetchone()[0]
    db.close()

    m.mount()
    # Recovery removed uncommitted staging files; each left is referenced.
    assert not staging_orphans(m), f'orphaned staging files: {staging_orphans(m)[:5]}'
    for name in done:
        assert read(os.path.join(dst, name)) == read(os.path.join(TREE, name)), name
    # Anything at its final name was closed before rsync renamed it there.
    checked = 0
    for root, _dirs, files in os.walk(dst):
        for f in files:
            p = os.path.join(root, f)
            rel = os.path.relpath(p, dst)
            src = os.path.join(TREE, rel)
            if f.startswith('.') or os.path.islink(p) or not os.path.isfile(src):
                continue  # rsync temp files (.name.XXXXXX) were never closed
            assert read(p) == read(src), f'{rel} differs from {src}'
            checked += 1
    log(f'{checked} files read back byte-exact; {pending_before} segments were pending')

    r = drive(c, m, 'sync', '--timeout', '120')
    assert 'nothing pending upload' in r.stdout, r.stdout
    assert not staging_orphans(m)
    db = meta_db(m)
    try:
        assert db.execute('SELECT COUNT(*) FROM upload_queue').fetchone()[0] == 0
        assert db.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
    finally:
        db.close()
    # Uploaded: the staging area is empty, and data comes back from the nodes.
    assert not os.listdir(os.path.join(m.state, 'staging'))
    drive(c, m, 'cache', 'drop')
    for name in done[-20:]:
        assert read(os.path.join(dst, name)) == read(os.path.join(TREE, name)), name


# --- nodes down -------------------------------------------------------------------

def test_nodes_down_reads_and_queued_writes(c, m):
    seg = c.segment_size()
    a = os.urandom(2 * seg + 1234)
    write(m.path('a'), a)
    drive(c, m, 'sync', '--timeout', '60')
    assert status(m.path('a')).startswith('stored'), status(m.path('a'))
    drive(c, m, 'cache', 'drop')

    # m = 2 nodes down: reads still work (decoded from the other shards).
    argv = {i: restartable(c, i) for i in (4, 5, 6)}
    c.kill(5)
    c.kill(6)
    assert read(m.path('a')) == a
    r = drive(c, m, 'stat', m.path('a'))
    assert 'degraded' in r.stdout, r.stdout

    # 3 down: fewer than k + m nodes, so writes queue and close still returns.
    c.kill(4)
    b = os.urandom(seg + 77)
    t0 = time.monotonic()
    write(m.path('b'), b)
    took = time.monotonic() - t0
    assert took < 10, f'close took {took:.1f} s in writeback mode with nodes down'
    time.sleep(1)
    assert status(m.path('b')).startswith('pending'), status(m.path('b'))
    r = drive(c, m, 'stat', m.path('b'))
    assert 'pending upload' in r.stdout, r.stdout
    r = drive(c, m, 'sync', '--timeout', '2', check=False, timeout=60)
    assert r.returncode != 0, r.stdout
    assert 'pending upload: ' in r.stdout and 'still pending' in r.stderr, (r.stdout, r.stderr)
    # The read cache never holds pending data: dropping it loses nothing.
    drive(c, m, 'cache', 'drop')
    assert read(m.path('b')) == b

    for i in (4, 5, 6):
        restart_node(c, i, argv[i])
    r = drive(c, m, 'sync', '--timeout', '120')
    log(f'after restarting 3 nodes: {r.stdout.strip().splitlines()[-1]} ({r.elapsed:.1f} s)')
    assert status(m.path('b')).startswith('stored'), status(m.path('b'))
    drive(c, m, 'cache', 'drop')
    assert read(m.path('b')) == b
    assert read(m.path('a')) == a


# --- cache drop and sync while mounted --------------------------------------------

def test_cache_drop_while_mounted(c, m):
    seg = c.segment_size()
    files = {f'f{i}': os.urandom(seg // 2 + i * seg // 3) for i in range(6)}
    for name, data in files.items():
        write(m.path(name), data)
    r = drive(c, m, 'sync')
    assert r.returncode == 0 and 'nothing pending upload' in r.stdout, r.stdout
    r = drive(c, m, 'sync')  # nothing pending: returns at once
    assert r.returncode == 0 and r.elapsed < 10, r
    assert cache_entries(m), 'uploaded segments should be in the read cache'

    # Readers keep going while the cache is dropped under them.
    errors = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            for name, data in files.items():
                if read(m.path(name)) != data:
                    errors.append(name)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(3):
            r = drive(c, m, 'cache', 'drop')
            assert 'dropped' in r.stdout, r.stdout
            time.sleep(0.3)
    finally:
        stop.set()
        t.join()
    assert not errors, f'wrong data while dropping the cache: {errors}'
    drive(c, m, 'cache', 'drop')
    assert not cache_entries(m), cache_entries(m)
    for name, data in files.items():
        assert read(m.path(name)) == data, name
    assert cache_entries(m), 'reads from the nodes should refill the cache'
    r = drive(c, m, 'stat', m.path('f5'), m.path('f0'))
    assert r.stdout.count('stored 6 of 6') >= 3, r.stdout
    # Unmounted: sync with nothing pending is fine; stat needs the mount.
    m.umount()
    assert drive(c, m, 'sync').returncode == 0
    assert drive(c, m, 'cache', 'drop').returncode == 0


def test_sync_fails_without_mount(c, m):
    # Pending data, then the mount dies: sync must say so, not wait.
    for i in (4, 5, 6):
        c.signal(i, signal.SIGSTOP)
    try:
        write(m.path('p'), os.urandom(100000))
        m.kill9()
    finally:
        for i in (4, 5, 6):
            c.signal(i, signal.SIGCONT)
    r = drive(c, m, 'sync', check=False, timeout=60)
    assert r.returncode != 0 and 'no mount' in r.stderr, (r.stdout, r.stderr)
    m.mount()
    r = drive(c, m, 'sync', '--timeout', '120')
    assert status(m.path('p')).startswith('stored')


# --- upload=sync: close waits for the shards ---------------------------------------

@mount_opts('allow_other', 'upload=sync', 'sync_timeout=6')
def test_upload_sync_close_waits_for_nodes(c, m):
    """close(2) in upload=sync mode returns only once every shard is stored;
    with too few nodes answering it blocks, and fails with EIO after
    -o sync_timeout (the data stays queued and is uploaded later)."""
    seg = c.segment_size()

    def close_in_thread(name, data, outcome):
        def run():
            t0 = time.monotonic()
            try:
                write(m.path(name), data)
                outcome['ok'] = True
            except OSError as e:
                outcome['errno'] = e.errno
            outcome['took'] = time.monotonic() - t0
        t = threading.Thread(target=run)
        t.start()
        return t

    stopped = (4, 5, 6)
    data1, data2 = os.urandom(seg + 5), os.urandom(seg // 3)
    for i in stopped:
        c.signal(i, signal.SIGSTOP)
    try:
        # 1: nodes stay stopped past sync_timeout: close fails with EIO.
        out1 = {}
        t1 = close_in_thread('late', data1, out1)
        t1.join(timeout=3)
        assert t1.is_alive(), f'close returned without the nodes: {out1}'
        t1.join(timeout=30)
        assert not t1.is_alive() and out1.get('errno') == 5, out1  # EIO
        assert status(m.path('late')).startswith('pending'), status(m.path('late'))
        # 2: the nodes come back while close waits: close succeeds.
        out2 = {}
        t2 = close_in_thread('back', data2, out2)
        t2.join(timeout=3)
        assert t2.is_alive(), f'close returned without the nodes: {out2}'
    finally:
        for i in stopped:
            c.signal(i, signal.SIGCONT)
    t2.join(timeout=60)
    assert not t2.is_alive() and out2.get('ok'), out2
    assert status(m.path('back')).startswith('stored'), status(m.path('back'))
    drive(c, m, 'sync', '--timeout', '120')
    assert status(m.path('late')).startswith('stored'), status(m.path('late'))
    drive(c, m, 'cache', 'drop')
    assert read(m.path('late')) == data1
    assert read(m.path('back')) == data2
    log(f'close with 3 nodes stopped: EIO after {out1["took"]:.1f} s; '
        f'succeeded {out2["took"]:.1f} s after starting once they were back')


if __name__ == '__main__':
    run_fs_tests(globals())
