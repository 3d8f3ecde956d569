"""Real programs on a shardfs mount over a real local cluster (issue 3):
rsync in and out (diff -r, then a second rsync that transfers nothing), git,
sqlite3, fio with crc32c verification, and reads while 2 of 6 nodes are
killed.

Run: python3 tests/fs/test_workloads.py [test_name ...]
"""

import os
import shutil
import subprocess
import time

from fsmount import log, run_fs_tests

TREE = os.environ.get('SHARDFS_RSYNC_TREE', '/usr/include')


def run(*cmd, cwd=None, timeout=1200):
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f'{" ".join(cmd)} exited {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}'
    r.elapsed = time.monotonic() - t0
    return r


def need(tool):
    if not shutil.which(tool):
        log(f'SKIP part: {tool} is not installed')
        return False
    return True


def test_rsync_roundtrip(c, m):
    if not need('rsync'):
        return
    dst = m.path('tree')
    r = run('rsync', '-a', '--stats', TREE + '/', dst + '/')
    log(f'rsync of {TREE} into the mount: {r.elapsed:.1f} s')
    run('diff', '-r', '--no-dereference', TREE, dst)
    again = run('rsync', '-a', '--stats', TREE + '/', dst + '/')
    assert 'Number of regular files transferred: 0' in again.stdout, again.stdout
    out = os.path.join(c.tmp, 'back')
    run('rsync', '-a', dst + '/', out + '/')
    run('diff', '-r', '--no-dereference', TREE, out)
    m.umount()
    m.mount()
    run('diff', '-r', '--no-dereference', TREE, dst)


def test_git(c, m):
    if not need('git'):
        return
    repo = m.path('repo')
    os.mkdir(repo)
    env = ['-c', 'user.name=t', '-c', 'user.email=t@example.org', '-c', 'init.defaultBranch=main']
    run('git', *env, 'init', cwd=repo)
    for i in range(20):
        with open(os.path.join(repo, f'file{i}.txt'), 'w') as f:
            f.write(f'line {i}\n' * (i * 100 + 1))
    run('git', *env, 'add', '.', cwd=repo)
    run('git', *env, 'commit', '-q', '-m', 'first', cwd=repo)
    with open(os.path.join(repo, 'file3.txt'), 'a') as f:
        f.write('changed\n')
    st = run('git', 'status', '--porcelain', cwd=repo).stdout
    assert st.strip() == 'M file3.txt', st
    run('git', *env, 'commit', '-qam', 'second', cwd=repo)
    log_out = run('git', 'log', '--oneline', cwd=repo).stdout
    assert len(log_out.splitlines()) == 2, log_out
    run('git', 'fsck', '--strict', cwd=repo)
    run('git', 'gc', '-q', cwd=repo)
    run('git', 'fsck', '--strict', cwd=repo)


def test_sqlite(c, m):
    import sqlite3
    path = m.path('db.sqlite')
    db = sqlite3.connect(path)
    db.execute('PRAGMA journal_mode=WAL')
    db.execute('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)')
    with db:
        db.executemany('INSERT INTO t VALUES (?, ?)', ((i, 'v' * (i % 300)) for i in range(20000)))
    assert db.execute('SELECT count(*), sum(length(v)) FROM t').fetchone()[0] == 20000
    db.close()
    m.umount()
    m.mount()
    db = sqlite3.connect(path)
    assert db.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
    assert db.execute('SELECT count(*) FROM t').fetchone()[0] == 20000
    db.close()


def test_fio_verify(c, m):
    if not need('fio'):
        return
    run('fio', '--name=verify', f'--directory={m.dir}', '--rw=randwrite', '--bs=64k',
        '--size=48m', '--ioengine=psync', '--verify=crc32c', '--do_verify=1',
        '--verify_fatal=1', '--verify_state_save=0', '--numjobs=2', '--group_reporting')
    run('fio', '--name=seq', f'--directory={m.dir}', '--rw=write', '--bs=1M', '--size=64m',
        '--ioengine=psync', '--verify=crc32c', '--do_verify=1', '--verify_fatal=1',
        '--verify_state_save=0')


def test_read_with_two_nodes_down(c, m):
    size = 8 * c.segment_size() + 777
    src = c.random_file('big', size)
    shutil.copyfile(src, m.path('big'))
    deadline = time.monotonic() + 120
    while not os.getxattr(m.path('big'), 'user.shardfs.status').startswith(b'stored'):
        assert time.monotonic() < deadline, 'upload did not finish'
        time.sleep(0.2)
    m.umount()
    shutil.rmtree(os.path.join(m.state, 'cache'))  # force reads from the nodes
    m.mount()
    with open(m.path('big'), 'rb') as f, open(src, 'rb') as ref:
        first = f.read(c.segment_size())
        assert first == ref.read(c.segment_size())
        c.kill(1)
        c.kill(4)
        while True:
            a, b = f.read(1 << 20), ref.read(1 << 20)
            assert a == b, 'mismatch after killing 2 nodes'
            if not a:
                break
    st = os.getxattr(m.path('big'), 'user.shardfs.status').decode()
    log(f'status with 2 nodes down: {st}')


if __name__ == '__main__':
    run_fs_tests(globals())
