"""Safety of a shardfs mount on a real local cluster (issue 3, Safety):
kill -9 of the mount during an rsync, nodes down (reads with m down, writes
queued when too few nodes are up, completed once they are back), `shardctl
cache drop` while mounted, `shardctl sync` and `shardctl stat`, close in
upload=sync mode while too few nodes answer, upload pacing (uploads wait
while the drive is busy, for at most -o upload_delay), and a state dir whose
disk fills up (ENOSPC for the writer, the mount goes on working).

A second mount of the same volume is tested in test_posix.py
(test_lease_refuses_second_mount); test_second_state_dir_refused here covers
the same volume mounted with another state dir.

How many nodes must be down before writes queue: a segment needs its n =
k + m shards stored, at most m of them on one node while fewer than n nodes
are usable (lib/placement.h PlaceStripeDegraded). With 6 nodes, k = 4,
m = 2, writes still complete (degraded) with 3 nodes up and queue with 2.

Reads bypass the kernel's page cache (POSIX_FADV_DONTNEED before each
uncached read): the mount keeps file pages cached across opens, so a plain
read after `cache drop` or with nodes down would never reach the mount.

Run: python3 tests/fs/test_safety.py [test_name ...]
"""

import errno
import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time

from fsmount import (Mount, client_conf, log, mount_opts, read, read_uncached,  # first: sets sys.path
                     run_fs_tests, unmounted, write)
import cluster as cluster_mod  # noqa: E402

SRC_TREE = os.environ.get('SHARDFS_RSYNC_TREE', '/usr/include')
TREE_FILES = 800   # regular files copied from SRC_TREE into the rsync source
KILL_AFTER = 200   # files at their final name in the mount when it is killed
NODE_TIMEOUT_MS = 2000  # client.conf timeout_ms in the tests that stop nodes


def status(path):
    return os.getxattr(path, 'user.shardfs.status').decode()


def wait_status(path, prefix, timeout=10):
    """The status xattr reflects node liveness at most ~5 s old plus a ping
    timeout (METADATA.md §9): wait that long for it to change."""
    deadline = time.monotonic() + timeout
    while True:
        s = status(path)
        if s.startswith(prefix):  # a str or a tuple of them
            return s
        assert time.monotonic() < deadline, f'{path}: "{s}" after {timeout} s, not "{prefix}..."'
        time.sleep(0.2)


def drive(c, m, *args, check=True, timeout=300):
    """shardctl --config C --state STATE ARGS (the mount's own state dir)."""
    return c.shardctl('--state', m.state, *args, check=check, timeout=timeout)


def meta_db(m):
    # Read-only beside the mount (WAL): never take a write lock here, and
    # never checkpoint a crashed mount's WAL before the mount recovers it.
    return sqlite3.connect(f'file:{os.path.join(m.state, "meta.db")}?mode=ro', uri=True,
                           timeout=10)


def integrity(m):
    db = meta_db(m)
    try:
        return db.execute('PRAGMA integrity_check').fetchall()
    finally:
        db.close()


def count(m, table):
    db = meta_db(m)
    try:
        return db.execute(f'SELECT COUNT(*) FROM {table}').fetchone()[0]
    finally:
        db.close()


def staging_orphans(m):
    """Staging files no segment row references (METADATA.md §3)."""
    db = meta_db(m)
    try:
        ids = {r[0] for r in db.execute(
            'SELECT staging_id FROM segments WHERE staging_id IS NOT NULL')}
        on_disk = os.listdir(os.path.join(m.state, 'staging'))
    finally:
        db.close()
    return [n for n in on_disk if int(n, 16) not in ids]


def orphan_of_size(m, size):
    for n in staging_orphans(m):
        try:
            if os.path.getsize(os.path.join(m.state, 'staging', n)) == size:
                return True
        except FileNotFoundError:
            pass
    return False


def cache_entries(m):
    d = os.path.join(m.state, 'cache')
    return [n for n in os.listdir(d) if not n.startswith('.')] if os.path.isdir(d) else []


def n_of(c):
    return c.k + c.m


def nodes_for_degraded_write(c):
    """Fewest usable nodes a segment can still be written to (at most m
    shards per node, lib/placement.h PlaceStripeDegraded)."""
    return math.ceil(n_of(c) / max(c.m, 1))


def too_many_down(c):
    """Nodes 1..N: stopping them leaves too few for even a degraded write."""
    return list(range(1, c.nodes - nodes_for_degraded_write(c) + 2))


def restartable(c, i):
    """The command line of node i, to start it again on the same port."""
    with open(f'/proc/{c.pid(i)}/cmdline', 'rb') as f:
        argv = [a.decode() for a in f.read().split(b'\0') if a]
    ep = c.endpoint(i)
    return [ep if a == 'tcp://127.0.0.1:0' else a for a in argv]


def restart_node(c, i, argv):
    node_dir = c.node_dir(i)
    # Before the start: a starting node removes its endpoint file until it
    # has bound again (netnode/main.cc), so reading it after raced.
    port = c.port(i)
    with open(os.path.join(node_dir, 'log'), 'ab') as logf:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                             start_new_session=True)
    cluster_mod._started.add((p.pid, node_dir))  # killed at exit whatever happens
    # The node rewrites its pid file; until then the fixture's stop needs it.
    with open(os.path.join(node_dir, 'pid'), 'w') as f:
        f.write(f'{p.pid}\n')
    deadline = time.monotonic() + 30
    while True:
        assert p.poll() is None, f'node-{i} exited {p.returncode} on restart'
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return p
        except OSError:
            assert time.monotonic() < deadline, f'node-{i} does not listen on {port}'
            time.sleep(0.1)


def stop_nodes(c, nodes):
    for i in nodes:
        c.signal(i, signal.SIGSTOP)


def cont_nodes(c, nodes):
    for i in nodes:
        c.signal(i, signal.SIGCONT)


# --- kill -9 during rsync ---------------------------------------------------------

def make_source_tree(c):
    """A few hundred small real files (a subset of SRC_TREE, which is not
    modified while we read it) plus three files of 1.5 segments at the top,
    which rsync sends first."""
    src = c.path('src')
    copied = 0
    for root, dirs, files in os.walk(SRC_TREE):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            dst = os.path.join(src, os.path.relpath(p, SRC_TREE))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(p, dst)
            copied += 1
            if copied == TREE_FILES:
                break
        if copied == TREE_FILES:
            break
    assert copied == TREE_FILES, f'{SRC_TREE} has only {copied} regular files'
    seg = c.segment_size()
    for i in range(3):
        with open(os.path.join(src, f'big{i}'), 'wb') as f:
            f.write(os.urandom(seg + seg // 2))
    return src


def final_files(dst):
    """Regular files at their final name (rsync writes .NAME.XXXXXX, closes
    it, then renames it): relative path -> True."""
    out = {}
    for root, _dirs, files in os.walk(dst):
        for f in files:
            if not f.startswith('.'):
                out[os.path.relpath(os.path.join(root, f), dst)] = True
    return out


def test_kill9_during_rsync(c, m):
    src = make_source_tree(c)
    dst = m.path('tree')
    seg = c.segment_size()
    # Not a file rsync writes: fsync'd, then written again and left open.
    synced = os.urandom(seg + 4321)
    fd = os.open(m.path('fsynced'), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, synced)
    os.fsync(fd)
    os.write(fd, os.urandom(5000))  # neither fsync'd nor closed: may be lost

    # Stop enough nodes that nothing can be uploaded from the middle of the
    # rsync on: segments are then pending (or in flight) at the kill for sure.
    stopped = too_many_down(c)
    rs = subprocess.Popen(['rsync', '-a', src + '/', dst + '/'],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = {}
    unc_fd = -1
    try:
        deadline = time.monotonic() + 120
        nodes_stopped = False
        while len(seen) < KILL_AFTER:
            assert rs.poll() is None, f'rsync ended ({rs.returncode}) before the kill'
            assert time.monotonic() < deadline, f'only {len(seen)} files after 120 s'
            # Everything seen here was closed and renamed before the kill.
            seen.update(final_files(dst))
            if not nodes_stopped and len(seen) >= KILL_AFTER // 2:
                stop_nodes(c, stopped)
                nodes_stopped = True
                closed = os.urandom(2 * seg + 99)
                write(m.path('closed'), closed)
            time.sleep(0.05)
        # Written but neither closed nor fsync'd: FADV_DONTNEED starts the
        # kernel's writeback, so the bytes reach a staging file that no
        # commit references (as with rsync's file in progress). Less than a
        # segment: filling one commits early (METADATA.md §4). The size is
        # one no other staging file has.
        unc_fd = os.open(m.path('uncommitted'), os.O_CREAT | os.O_WRONLY, 0o644)
        unc = os.urandom(seg // 2 + 1007)
        os.write(unc_fd, unc)
        os.posix_fadvise(unc_fd, 0, 0, os.POSIX_FADV_DONTNEED)
        deadline = time.monotonic() + 10
        while not orphan_of_size(m, len(unc)) and time.monotonic() < deadline:
            time.sleep(0.05)
        m.kill9()
    finally:
        cont_nodes(c, stopped)
        try:
            rs.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rs.kill()
            rs.wait()
        for f in (fd, unc_fd):
            try:
                os.close(f)
            except OSError:
                pass  # ENOTCONN: the mount is gone
    log(f'killed the mount with {len(seen)} files of {TREE_FILES + 3} at their final name')

    # The crashed database as the kill left it (hot WAL, nobody recovered it).
    assert integrity(m) == [('ok',)], integrity(m)
    pending_before = count(m, 'upload_queue')
    assert pending_before > 0, 'nothing was pending at the kill: the test proves nothing'
    orphans_before = len(staging_orphans(m))
    assert orphan_of_size(m, len(unc)), 'the uncommitted file never reached staging'

    m.mount()
    assert integrity(m) == [('ok',)]
    # Recovery removed uncommitted staging files; each left is referenced.
    assert not staging_orphans(m), f'orphaned staging files: {staging_orphans(m)[:5]}'
    for rel in seen:
        p = os.path.join(dst, rel)
        assert os.path.isfile(p), f'{rel} was at its final name before the kill, now gone'
    # Anything at its final name was closed before rsync renamed it there.
    checked = 0
    for rel in final_files(dst):
        assert read(os.path.join(dst, rel)) == read(os.path.join(src, rel)), rel
        checked += 1
    assert read(m.path('closed')) == closed
    got = read(m.path('fsynced'))
    assert got[:len(synced)] == synced, 'fsync\'d bytes lost or changed'
    # Never committed: may be lost, but never garbage.
    got = read(m.path('uncommitted'))
    assert got == unc[:len(got)], 'uncommitted data came back changed'
    log(f'{checked} files read back byte-exact; {pending_before} segments were pending, '
        f'{orphans_before} uncommitted staging files removed at remount')

    # The queue resumes by itself.
    r = drive(c, m, 'sync', '--timeout', '60')
    assert 'nothing pending upload' in r.stdout, r.stdout
    assert count(m, 'upload_queue') == 0
    assert not os.listdir(os.path.join(m.state, 'staging')), 'uploaded, yet still staged'
    assert integrity(m) == [('ok',)]

    # The mount works normally: rsync finishes the tree, then nothing is left
    # to do, and everything comes back from the nodes.
    # --delete: the killed rsync's temp files (.NAME.XXXXXX) go.
    subprocess.run(['rsync', '-a', '--delete', src + '/', dst + '/'], check=True, timeout=300)
    r = subprocess.run(['rsync', '-a', '--itemize-changes', src + '/', dst + '/'], check=True,
                       capture_output=True, text=True, timeout=300)
    assert r.stdout.strip() == '', f'second rsync transferred: {r.stdout[:500]}'
    drive(c, m, 'sync', '--timeout', '60')
    drive(c, m, 'cache', 'drop')
    for rel in ['big0', 'big1', 'big2'] + sorted(seen)[:50]:
        assert read_uncached(os.path.join(dst, rel)) == read(os.path.join(src, rel)), rel
    assert read_uncached(m.path('closed')) == closed
    assert cache_entries(m), 'the reads should have come from the nodes'
    subprocess.run(['diff', '-r', src, dst], check=True, timeout=300,
                   stdout=subprocess.DEVNULL)


# --- a second mount of the volume -------------------------------------------------

def test_second_state_dir_refused(c, m):
    """Another state dir (another metadata copy) of a mounted volume would
    diverge silently: refused while the first mount lives, fine after it."""
    other = Mount(c, name='mnt2', state=c.path('state2'))
    r = other.mount(check=False)
    assert r.returncode != 0, 'a second mount of the volume with its own state dir succeeded'
    assert 'already mounted' in r.stderr and m.dir in r.stderr, r.stderr
    assert not os.path.ismount(other.dir)
    # The same state dir: the lease says who holds it.
    again = Mount(c, name='mnt3', state=m.state)
    r = again.mount(check=False)
    assert r.returncode != 0 and f'pid {m.pid}' in r.stderr, r.stderr
    # A dead mount (kill -9, not yet cleaned up) does not block a remount.
    m.kill9()
    m.mount()
    write(m.path('x'), b'after remount')
    assert read(m.path('x')) == b'after remount'


# --- nodes down -------------------------------------------------------------------

@client_conf(timeout_ms=NODE_TIMEOUT_MS)
def test_nodes_down_reads_and_queued_writes(c, m):
    seg = c.segment_size()
    n = n_of(c)
    a = os.urandom(2 * seg + 1234)
    write(m.path('a'), a)
    drive(c, m, 'sync', '--timeout', '60')
    assert status(m.path('a')).startswith(f'stored {n} of {n}'), status(m.path('a'))
    drive(c, m, 'cache', 'drop')

    nodes = list(range(1, c.nodes + 1))
    argv = {i: restartable(c, i) for i in nodes}
    down = []

    def kill(count):
        for i in nodes[len(nodes) - len(down) - count:len(nodes) - len(down)]:
            c.kill(i)
            down.append(i)

    # m nodes down: reads still work, decoded from the other shards.
    kill(c.m)
    assert read_uncached(m.path('a')) == a
    assert cache_entries(m), 'the read should have gone to the nodes'
    wait_status(m.path('a'), f'degraded: {n - c.m} of {n} shards on live nodes, survives 0')
    r = drive(c, m, 'stat', m.path('a'))
    assert 'degraded' in r.stdout and f'stored {n} of {n}' not in r.stdout, r.stdout

    # Down to the fewest nodes a degraded write accepts: writes complete, but
    # doubled up, and the status must not claim full redundancy.
    kill(c.nodes - len(down) - nodes_for_degraded_write(c))
    d = os.urandom(seg + 11)
    write(m.path('d'), d)
    drive(c, m, 'sync', '--timeout', '60')
    # With 6 nodes, k = 4, m = 2: 6 shards on 3 nodes, two each, and one
    # more node loss leaves 4.
    up = nodes_for_degraded_write(c)
    assert status(m.path('d')).startswith(f'degraded: {n} of {n} shards on live nodes, only '
                                          f'{up} distinct, survives'), status(m.path('d'))
    r = drive(c, m, 'stat', m.path('d'))
    assert 'degraded' in r.stdout and f'stored {n} of {n}' not in r.stdout, r.stdout

    # One more down: writes queue, and close still returns at once.
    kill(1)
    b = os.urandom(seg + 77)
    t0 = time.monotonic()
    write(m.path('b'), b)
    took = time.monotonic() - t0
    assert took < 5, f'close took {took:.1f} s in writeback mode with nodes down'
    time.sleep(1)
    assert status(m.path('b')).startswith('pending upload'), status(m.path('b'))
    r = drive(c, m, 'stat', m.path('b'))
    assert 'pending upload' in r.stdout, r.stdout
    r = drive(c, m, 'sync', '--timeout', '2', check=False, timeout=60)
    assert r.returncode != 0, r.stdout
    assert 'pending upload: ' in r.stdout and 'still pending' in r.stderr, (r.stdout, r.stderr)
    # The read cache never holds pending data: dropping it loses nothing.
    staged = sorted(os.listdir(os.path.join(m.state, 'staging')))
    assert staged
    drive(c, m, 'cache', 'drop')
    assert sorted(os.listdir(os.path.join(m.state, 'staging'))) == staged
    assert read_uncached(m.path('b')) == b

    t0 = time.monotonic()
    for i in down:
        restart_node(c, i, argv[i])
    r = drive(c, m, 'sync', '--timeout', '120')
    log(f'{len(down)} nodes restarted: {r.stdout.strip().splitlines()[-1]} '
        f'after {time.monotonic() - t0:.1f} s')
    # Uploaded with every shard on a live node. The writer may not have
    # re-pinged every restarted node yet and double up on one (reported as
    # degraded, lib/placement.h PlaceStripeDegraded), so both forms count.
    wait_status(m.path('b'), (f'stored {n} of {n}', f'degraded: {n} of {n} shards on live'))
    wait_status(m.path('a'), f'stored {n} of {n}')
    drive(c, m, 'cache', 'drop')
    assert read_uncached(m.path('b')) == b
    assert read_uncached(m.path('a')) == a
    assert read_uncached(m.path('d')) == d


# --- cache drop and sync while mounted --------------------------------------------

def test_cache_drop_while_mounted(c, m):
    seg = c.segment_size()
    n = n_of(c)
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
    reads = [0]
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            for name, data in files.items():
                if read_uncached(m.path(name)) != data:
                    errors.append(name)
                reads[0] += 1

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
    log(f'{reads[0]} file reads during 3 cache drops')
    r = drive(c, m, 'cache', 'drop')
    assert 'mount pid' in r.stdout, r.stdout
    assert not cache_entries(m), cache_entries(m)
    for name, data in files.items():
        assert read_uncached(m.path(name)) == data, name
    assert cache_entries(m), 'reads from the nodes should refill the cache'
    r = drive(c, m, 'stat', m.path('f5'), m.path('f0'))
    assert r.stdout.count(f'stored {n} of {n}') == 2 + 4, r.stdout  # files + segments
    # Unmounted: sync with nothing pending is fine; stat needs the mount.
    m.umount()
    assert drive(c, m, 'sync').returncode == 0
    r = drive(c, m, 'cache', 'drop')
    assert r.returncode == 0 and not cache_entries(m), r.stdout
    r = drive(c, m, 'stat', m.dir, check=False)
    assert r.returncode != 0 and 'not on a mount' in r.stderr, (r.stdout, r.stderr)


@client_conf(timeout_ms=NODE_TIMEOUT_MS)
def test_sync_fails_without_mount(c, m):
    # Pending data, then the mount dies: sync must say so, not wait.
    stopped = too_many_down(c)
    stop_nodes(c, stopped)
    try:
        p = os.urandom(100000)
        write(m.path('p'), p)
        m.kill9()
    finally:
        cont_nodes(c, stopped)
    assert count(m, 'upload_queue') > 0
    r = drive(c, m, 'sync', check=False, timeout=60)
    assert r.returncode != 0 and 'no mount' in r.stderr, (r.stdout, r.stderr)
    assert r.elapsed < 10, f'sync took {r.elapsed:.1f} s to notice there is no mount'
    m.mount()
    drive(c, m, 'sync', '--timeout', '60')
    n = n_of(c)
    wait_status(m.path('p'), (f'stored {n} of {n}', f'degraded: {n} of {n} shards on live'))
    drive(c, m, 'cache', 'drop')
    assert read_uncached(m.path('p')) == p


# --- upload=sync: close waits for the shards ---------------------------------------

@client_conf(timeout_ms=NODE_TIMEOUT_MS)
@mount_opts('allow_other', 'upload=sync', 'sync_timeout=6')
def test_upload_sync_close_waits_for_nodes(c, m):
    """close(2) in upload=sync mode returns only once every shard is stored;
    with too few nodes answering it blocks, and fails with EIO after
    -o sync_timeout (the data stays queued and is uploaded later)."""
    seg = c.segment_size()
    n = n_of(c)

    # All nodes up: once close returns, the file is stored (no sync needed).
    first = os.urandom(seg + 3)
    write(m.path('first'), first)
    assert status(m.path('first')).startswith(f'stored {n} of {n}'), status(m.path('first'))
    assert count(m, 'upload_queue') == 0

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

    stopped = too_many_down(c)
    data1, data2 = os.urandom(seg + 5), os.urandom(seg // 3)
    stop_nodes(c, stopped)
    t1 = t2 = None
    try:
        # 1: nodes stay stopped past sync_timeout: close fails with EIO.
        out1 = {}
        t1 = close_in_thread('late', data1, out1)
        t1.join(timeout=3)
        assert t1.is_alive(), f'close returned without the nodes: {out1}'
        t1.join(timeout=30)
        assert not t1.is_alive() and out1.get('errno') == errno.EIO, out1
        assert 5 <= out1['took'] < 20, out1  # sync_timeout=6, not much more
        assert status(m.path('late')).startswith('pending'), status(m.path('late'))
        # 2: the nodes come back while close waits: close succeeds.
        out2 = {}
        t2 = close_in_thread('back', data2, out2)
        t2.join(timeout=3)
        assert t2.is_alive(), f'close returned without the nodes: {out2}'
    finally:
        cont_nodes(c, stopped)
        for t in (t1, t2):
            if t:
                t.join(timeout=60)
    assert not t2.is_alive() and out2.get('ok'), out2
    # Stored, not pending (liveness in the status may lag by a few seconds).
    assert not status(m.path('back')).startswith('pending'), status(m.path('back'))
    drive(c, m, 'sync', '--timeout', '60')
    # All shards on live nodes (doubled up on one if the writer had not
    # re-pinged every node yet: see test_nodes_down_reads_and_queued_writes).
    all_live = (f'stored {n} of {n}', f'degraded: {n} of {n} shards on live')
    wait_status(m.path('back'), all_live)
    wait_status(m.path('late'), all_live)
    drive(c, m, 'cache', 'drop')
    assert read_uncached(m.path('late')) == data1
    assert read_uncached(m.path('back')) == data2
    log(f'close with {len(stopped)} nodes stopped: EIO after {out1["took"]:.1f} s; '
        f'succeeded {out2["took"]:.1f} s after starting once they were back')


# --- a staging file lost behind the mount's back ----------------------------------

@unmounted
@client_conf(timeout_ms=NODE_TIMEOUT_MS)
def test_missing_staging_file_is_damaged(c, m):
    """A staging file pending upload that vanishes (deleted by hand, a
    damaged disk) cannot be uploaded: the file's status says damaged, the
    error is logged once instead of the upload being retried for ever, and
    other files still upload."""
    log_path = os.path.join(c.tmp, 'shardfs-daemon.log')
    base_args = m.args
    m.args = lambda extra_opts=(): base_args(extra_opts) + ['--log-file', log_path]
    m.mount()
    seg = c.segment_size()
    staging = os.path.join(m.state, 'staging')
    stopped = too_many_down(c)
    stop_nodes(c, stopped)  # the upload fails: the staging file is read again
    try:
        write(m.path('lost'), os.urandom(seg // 2))
        assert status(m.path('lost')).startswith('pending upload'), status(m.path('lost'))
        staged = os.listdir(staging)
        assert len(staged) == 1, staged
        # After a failed attempt (its bytes were read before), so the retry
        # must read the staging file again.
        deadline = time.monotonic() + 60
        while True:
            with open(log_path, errors='replace') as f:
                if 'failed (retry in' in f.read():
                    break
            assert time.monotonic() < deadline, 'no upload attempt failed with the nodes stopped'
            time.sleep(0.2)
        os.unlink(os.path.join(staging, staged[0]))
        s = wait_status(m.path('lost'), 'damaged', timeout=60)
        assert 'missing' in s, s
    finally:
        cont_nodes(c, stopped)
    ok = os.urandom(seg // 3)
    write(m.path('ok'), ok)
    wait_status(m.path('ok'), ('stored', 'degraded'), timeout=60)
    time.sleep(3)  # a spinning retry would log again meanwhile
    with open(log_path, errors='replace') as f:
        lines = [line for line in f if 'is missing' in line]
    assert len(lines) == 1, f'{len(lines)} log lines about the missing staging file: {lines[:3]}'
    assert status(m.path('lost')).startswith('damaged'), status(m.path('lost'))
    assert read_uncached(m.path('ok')) == ok


def keep_busy(m, seconds, check=None):
    """Writes and closes a small (inline) file every 0.1 s for `seconds`,
    the way rsync or tar keep a drive busy; calls check() after each."""
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        write(m.path(f'busy{i % 10}'), b'x' * 100)
        i += 1
        if check:
            check()
        time.sleep(0.1)


@mount_opts('allow_other', 'upload_delay=30')
def test_uploads_wait_while_the_drive_is_busy(c, m):
    """upload=writeback pacing (-o upload_delay): a closed file's upload
    waits while other files keep being written, and follows within seconds
    of the writer stopping."""
    data = os.urandom(c.segment_size() // 2 + 123)  # above the inline limit
    write(m.path('first'), data)

    def still_pending():
        assert status(m.path('first')).startswith('pending'), \
            f'uploaded while the drive was busy: {status(m.path("first"))}'
    keep_busy(m, 5, still_pending)
    t0 = time.monotonic()
    wait_status(m.path('first'), 'stored', timeout=30)
    log(f'uploaded {time.monotonic() - t0:.1f} s after the writer stopped')
    assert read_uncached(m.path('first')) == data


@mount_opts('allow_other', 'upload_delay=2')
def test_upload_delay_is_bounded(c, m):
    """A drive that never goes quiet holds uploads back for upload_delay at
    most: the file is stored while the writer is still going."""
    write(m.path('first'), os.urandom(c.segment_size() // 2 + 77))
    seen = {}

    def note_stored():
        if 'at' not in seen and status(m.path('first')).startswith('stored'):
            seen['at'] = time.monotonic()
    t0 = time.monotonic()
    keep_busy(m, 20, note_stored)
    assert 'at' in seen, 'not uploaded during 20 s of writes with upload_delay=2'
    log(f'uploaded {seen["at"] - t0:.1f} s into a busy spell (upload_delay=2)')
    assert seen['at'] - t0 >= 1.5, 'not held back at all'


# --- a full disk under the state dir ---------------------------------------------

FULL_DISK_MIB = 192  # the tmpfs holding the state dir
RESERVE_MIB = 64     # -o disk_reserve's default


def du_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@unmounted
def test_full_state_disk(c, m):
    """The state dir's disk fills up with a big write: the writer gets
    ENOSPC, and the mount goes on working (the free space the drive keeps
    for its metadata is still there): the big file can be deleted, new
    files written, everything uploaded; the read cache gives its space back
    to new writes; after a remount every file closed before reads back
    byte-exact."""
    disk = c.path('small-disk')
    os.makedirs(disk)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={FULL_DISK_MIB}m', 'tmpfs', disk],
                   check=True)
    small = Mount(c, name='mnt-small', state=os.path.join(disk, 'state'), log_to_file=True)
    try:
        small.mount()
        keep = os.urandom(2 * c.segment_size() + 999)
        write(small.path('keep'), keep)
        err = None
        written = 0
        chunk = os.urandom(1 << 20)
        try:
            with open(small.path('big'), 'wb') as f:
                while written < 2 * FULL_DISK_MIB << 20:
                    f.write(chunk)
                    written += len(chunk)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            err = e
        assert err is not None, f'wrote {written >> 20} MiB on a {FULL_DISK_MIB} MiB disk'
        assert err.errno == errno.ENOSPC, f'errno {err.errno}, expected ENOSPC: {err}'
        free = free_bytes(disk)
        log(f'ENOSPC after {written >> 20} MiB, {free >> 20} MiB free on the state disk')
        assert free >= (RESERVE_MIB - 8) << 20, f'only {free >> 20} MiB left for the metadata'

        # Still a working file system.
        os.unlink(small.path('big'))
        after = os.urandom(c.segment_size() + 4321)
        write(small.path('after'), after)
        os.mkdir(small.path('dir'))
        write(small.path('dir', 'tiny'), b'tiny')
        assert read_uncached(small.path('keep')) == keep
        c.shardctl('--state', small.state, 'sync', '--timeout', '120', timeout=180)

        # Fill the read cache from the nodes (what the big write did to it
        # depends on when uploads ran). A write that needs part of its
        # space beyond what is free above the reserve then gets it.
        c.shardctl('--state', small.state, 'cache', 'drop')
        assert read_uncached(small.path('keep')) == keep
        assert read_uncached(small.path('after')) == after
        cache = os.path.join(small.state, 'cache')
        cached = du_bytes(cache)
        assert cached >= 8 << 20, f'only {cached} bytes in the read cache after reading 12 MiB'
        size = free_bytes(disk) - (RESERVE_MIB << 20) + cached // 2
        fill = os.urandom(size)
        with open(small.path('fill'), 'wb') as f:
            f.write(fill)
            f.flush()
            os.fsync(f.fileno())
        log(f'{size >> 20} MiB written with the read cache at {cached >> 20} MiB: '
            f'now {du_bytes(cache) >> 20} MiB')
        assert du_bytes(cache) < cached, 'the read cache did not shrink'

        with open(small.log, errors='replace') as f:
            text = f.read()
        assert 'metadata commit failed' not in text, f'the metadata store stopped:\n{text[-2000:]}'
        assert 'writes fail with ENOSPC' in text, f'no warning about the full disk:\n{text[-2000:]}'

        small.umount()
        db = sqlite3.connect(os.path.join(small.state, 'meta.db'))
        try:
            assert db.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
        finally:
            db.close()
        small.mount()
        assert read_uncached(small.path('keep')) == keep
        assert read_uncached(small.path('after')) == after
        assert read(small.path('dir', 'tiny')) == b'tiny'
        assert read_uncached(small.path('fill')) == fill
        assert not os.path.exists(small.path('big'))
    finally:
        small.cleanup()
        if subprocess.run(['umount', disk]).returncode != 0:
            subprocess.run(['umount', '-l', disk])


if __name__ == '__main__':
    run_fs_tests(globals())
