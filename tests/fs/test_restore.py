"""Disaster recovery of a shardfs volume on a real local cluster (issue 6,
fs/SNAPSHOTS.md): metadata snapshots in the network, `shardctl restore`
from the key alone, the network lease and `shardctl fsck`.

- a tree written through the mount survives the loss of the whole state
  dir: restore from the key into a fresh dir, mount, compare byte-exact;
- a wrong key fails clearly;
- a corrupted newest snapshot falls back to the previous one, with a warning;
- kill -9 of the mount in the middle of a snapshot leaves the previous one
  usable (and the half-written one shows up as orphans in fsck);
- two mounts of one volume from two state dirs: the second is refused, and
  -o break_lease takes the lease over (the first one then unmounts itself);
- fsck finds an orphan object and a missing shard; --collect deletes orphans.

Run: python3 tests/fs/test_restore.py [test_name ...]
"""

import os
import re
import shutil
import subprocess
import time

from fsmount import Mount, _pid_alive, log, mount_opts, read, run_fs_tests, unmounted, write

QUICK = ('allow_other', 'snapshot_quiet=1', 'lease_ttl=3')


def key_file(c):
    return os.path.join(c.dir, 'volume.key')


def make_tree(m, seg):
    """A small tree: directories, a multi-segment file, inline files, a
    symlink, an xattr. Returns {relative path: bytes}."""
    files = {
        'docs/a.txt': b'hello shardfs\n',
        'docs/deep/b.bin': os.urandom(3 * seg + 12345),
        'docs/deep/c.bin': os.urandom(70000),
        'empty': b'',
        'top.bin': os.urandom(seg // 2),
    }
    for i in range(20):
        files[f'many/f{i:02d}'] = os.urandom(100 + i * 997)
    for rel, data in files.items():
        os.makedirs(os.path.dirname(m.path(rel)) or m.dir, exist_ok=True)
        write(m.path(rel), data)
    os.symlink('docs/a.txt', m.path('link'))
    os.setxattr(m.path('docs/a.txt'), 'user.color', b'blue')
    return files


def check_tree(m, files):
    for rel, data in files.items():
        got = read(m.path(rel))
        assert got == data, f'{rel}: {len(got)} bytes, expected {len(data)} (or content differs)'
    assert os.readlink(m.path('link')) == 'docs/a.txt'
    assert os.getxattr(m.path('docs/a.txt'), 'user.color') == b'blue'


def sync(c, m):
    c.shardctl('--state', m.state, 'sync', '--timeout', '60')


def restore(c, state, *extra, check=True, key=None):
    return c.shardctl('restore', '--key', key or key_file(c), '--bootstrap', c.endpoint(1),
                      '--state', state, *extra, config=None, check=check, timeout=120)


def snapshots(c):
    """[(seq, object id)] newest first, from `restore --list`."""
    r = c.shardctl('restore', '--key', key_file(c), '--bootstrap', c.endpoint(1), '--list',
                   config=None)
    return [(int(m.group(1)), m.group(2))
            for m in re.finditer(r'^(\d+)\s.*object ([0-9a-f]{32})$', r.stdout, re.M)]


class RestoredMount(Mount):
    """A mount of a restored state dir, with the client.conf restore wrote."""

    def __init__(self, c, name, state, opts=QUICK):
        super().__init__(c, name=name, state=state, opts=opts)
        self.config = os.path.join(state, 'client.conf')

    def args(self, extra_opts=()):
        a = super().args(extra_opts)
        a[a.index('--config') + 1] = self.config
        return a


def restored_mount(c, name, state, opts=QUICK):
    return RestoredMount(c, name, state, opts)


# --- snapshot, lose everything, restore ------------------------------------------

@unmounted
def test_restore_roundtrip(c, m):
    m.opts = list(QUICK)
    m.mount()
    files = make_tree(m, c.segment_size())
    sync(c, m)
    t0 = time.monotonic()
    m.umount()  # clean unmount: final snapshot
    log(f'unmount with final snapshot took {time.monotonic() - t0:.1f} s')
    snaps = snapshots(c)
    assert snaps, 'no snapshot after a clean unmount'

    shutil.rmtree(m.state)  # the desktop is gone
    state2 = os.path.join(c.tmp, 'restored')
    t0 = time.monotonic()
    r = restore(c, state2)
    log(f'restore took {time.monotonic() - t0:.1f} s: {r.stdout.strip().splitlines()[0]}')
    assert 'no file known to the snapshot was lost' in r.stdout, r.stdout
    m2 = restored_mount(c, 'mnt2', state2)
    m2.mount()
    check_tree(m2, files)
    # The restored drive is writable and snapshots again.
    write(m2.path('after'), b'written after the restore')
    m2.umount()
    assert snapshots(c)[0][0] > snaps[0][0]


def test_wrong_key_fails_clearly(c, m):
    write(m.path('x'), b'data')
    m.umount()
    wrong = os.path.join(c.tmp, 'wrong.key')
    with open(os.open(wrong, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
        f.write('shardfs-key-v1 ' + os.urandom(32).hex() + '\n')
    r = restore(c, os.path.join(c.tmp, 'r'), key=wrong, check=False)
    assert r.returncode != 0, r.stdout
    assert "not this volume's key" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(c.tmp, 'r', 'meta.db'))


# --- a corrupted newest snapshot ---------------------------------------------------

@mount_opts(*QUICK)
def test_corrupt_newest_falls_back(c, m):
    write(m.path('v'), b'version 1')
    write(m.path('keep'), os.urandom(50000))
    sync(c, m)
    m.umount()
    m.mount()
    write(m.path('v'), b'version 2')
    write(m.path('new'), b'only in snapshot 2')
    sync(c, m)
    m.umount()
    snaps = snapshots(c)
    assert len(snaps) >= 2, snaps
    newest_seq, newest_obj = snaps[0]
    # Flip bytes in every shard of the newest snapshot's manifest.
    hits = [p for p in c.shard_files() if newest_obj in os.path.basename(p)]
    assert hits, f'no shard file of object {newest_obj}'
    for p in hits:
        with open(p, 'r+b') as f:
            f.seek(-20, os.SEEK_END)
            b = f.read(8)
            f.seek(-20, os.SEEK_END)
            f.write(bytes(x ^ 0xff for x in b))
    state2 = os.path.join(c.tmp, 'restored')
    r = restore(c, state2)
    assert re.search(rf'snapshot {newest_seq} is unusable.*falling back', r.stderr), r.stderr
    assert f'restored snapshot {snaps[1][0]}' in r.stdout, r.stdout
    assert 'not the newest snapshot' in r.stdout, r.stdout
    m2 = restored_mount(c, 'mnt2', state2)
    m2.mount()
    assert read(m2.path('v')) == b'version 1'
    assert not os.path.exists(m2.path('new'))
    m2.umount()


# --- kill -9 in the middle of a snapshot -------------------------------------------

@mount_opts(*QUICK)
def test_kill9_during_snapshot(c, m):
    a = os.urandom(200000)
    write(m.path('a'), a)
    sync(c, m)
    m.umount()  # snapshot 1
    first = snapshots(c)[0][0]

    os.environ['SHARDFS_TEST_SNAPSHOT_STALL_S'] = '60'
    try:
        m.mount()
    finally:
        del os.environ['SHARDFS_TEST_SNAPSHOT_STALL_S']
    write(m.path('b'), os.urandom(300000))
    sync(c, m)
    marker = os.path.join(m.state, 'snapshot.stalled')
    deadline = time.monotonic() + 30
    while not os.path.exists(marker):
        assert time.monotonic() < deadline, 'the snapshot never started'
        time.sleep(0.1)
    m.kill9()  # object stored, head not yet written
    assert snapshots(c)[0][0] == first

    state2 = os.path.join(c.tmp, 'restored')
    r = restore(c, state2)
    assert f'restored snapshot {first}' in r.stdout, r.stdout
    assert 'not in this snapshot' in r.stdout, r.stdout  # b's stripes, the half snapshot
    assert 'lease is still held' in r.stdout and 'break_lease' in r.stdout, r.stdout
    m2 = restored_mount(c, 'mnt2', state2)
    # The killed mount never released its lease: refused, then broken on purpose.
    res = m2.mount(check=False)
    assert res.returncode != 0 and 'break_lease' in res.stderr, res.stderr
    m2.mount(extra_opts=('break_lease',))
    assert read(m2.path('a')) == a
    assert not os.path.exists(m2.path('b'))
    m2.umount()

    # fsck of the restored drive: the half-written snapshot and b are orphans.
    fsck = ['--config', os.path.join(state2, 'client.conf'), '--state', state2, 'fsck']
    r = c.shardctl(*fsck, config=None, check=False)
    assert r.returncode == 4 and 'orphan stripe' in r.stdout, (r.returncode, r.stdout)
    r = c.shardctl(*fsck, '--collect', config=None, check=False)
    assert r.returncode == 1 and 'collected orphan' in r.stdout, (r.returncode, r.stdout)
    r = c.shardctl(*fsck, config=None, check=False)
    assert r.returncode == 0, r.stdout


# --- two mounts of one volume --------------------------------------------------------

# The local lock (fs/lease.h) is an abstract Unix socket named after the
# volume: a second mount on this machine never reaches the network lease. To
# play "another machine", a preload shim renames that socket per process.
OTHER_HOST_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
static socklen_t rename_lock(const struct sockaddr *a, socklen_t len, struct sockaddr_un *out) {
  const char *prefix = "shardfs-volume-";
  const struct sockaddr_un *u = (const struct sockaddr_un *)a;
  if (a->sa_family != AF_UNIX || len <= sizeof(sa_family_t) + 1 || u->sun_path[0] != 0 ||
      strncmp(u->sun_path + 1, prefix, strlen(prefix)) != 0) return 0;
  size_t n = len - sizeof(sa_family_t);
  memcpy(out, u, len);
  n += snprintf(out->sun_path + n, sizeof(out->sun_path) - n, "-otherhost");
  return (socklen_t)(sizeof(sa_family_t) + n);
}
int bind(int fd, const struct sockaddr *a, socklen_t len) {
  static int (*real)(int, const struct sockaddr *, socklen_t);
  if (!real) real = dlsym(RTLD_NEXT, "bind");
  struct sockaddr_un u; socklen_t l = rename_lock(a, len, &u);
  return l ? real(fd, (struct sockaddr *)&u, l) : real(fd, a, len);
}
int connect(int fd, const struct sockaddr *a, socklen_t len) {
  static int (*real)(int, const struct sockaddr *, socklen_t);
  if (!real) real = dlsym(RTLD_NEXT, "connect");
  struct sockaddr_un u; socklen_t l = rename_lock(a, len, &u);
  return l ? real(fd, (struct sockaddr *)&u, l) : real(fd, a, len);
}
"""


def other_host_shim(c):
    src = os.path.join(c.tmp, 'otherhost.c')
    lib = os.path.join(c.tmp, 'otherhost.so')
    with open(src, 'w') as f:
        f.write(OTHER_HOST_SHIM)
    cc = shutil.which('cc') or shutil.which('gcc')
    if not cc:
        return None
    r = subprocess.run([cc, '-shared', '-fPIC', '-o', lib, src, '-ldl'], capture_output=True,
                       text=True)
    return lib if r.returncode == 0 else None


def mount_as_other_host(mnt, shim, extra_opts=()):
    os.environ['LD_PRELOAD'] = shim
    try:
        return mnt.mount(extra_opts=extra_opts, check=False)
    finally:
        del os.environ['LD_PRELOAD']


@mount_opts('allow_other', 'lease_ttl=3')
def test_second_mount_refused(c, m):
    write(m.path('x'), b'from the first mount')
    other = Mount(c, name='mnt2', state=os.path.join(c.tmp, 'state2'),
                  opts=('allow_other', 'lease_ttl=3'))
    # Same machine: the local volume lock refuses it.
    r = other.mount(check=False)
    assert r.returncode != 0 and 'already mounted' in r.stderr, r.stderr
    assert not os.path.ismount(other.dir)

    shim = other_host_shim(c)
    if not shim:
        log('no C compiler: the other-machine half of this test is skipped')
        return
    # "Another machine": only the network lease stands in the way.
    r = mount_as_other_host(other, shim)
    assert r.returncode != 0, 'second mount of the volume was not refused'
    assert 'already mounted elsewhere' in r.stderr, r.stderr
    assert os.path.realpath(m.dir) in r.stderr and 'break_lease' in r.stderr, r.stderr
    assert not os.path.ismount(other.dir)

    # Breaking the lease on purpose: the first mount notices and goes away.
    first_pid = m.pid
    r = mount_as_other_host(other, shim, ('break_lease',))
    assert r.returncode == 0, r.stderr
    other.pid = other.lease_pid()
    deadline = time.monotonic() + 20
    while _pid_alive(first_pid):
        assert time.monotonic() < deadline, 'the first mount kept running without its lease'
        time.sleep(0.2)
    assert not os.path.ismount(m.dir), 'the first mount did not unmount itself'
    m.pid = None
    write(other.path('y'), b'from the second mount')
    # A fresh state dir holds nothing of the first mount's (it took no snapshot).
    assert not os.path.exists(other.path('x'))
    other.umount()


# --- fsck ------------------------------------------------------------------------------

@mount_opts(*QUICK)
def test_fsck_orphan_and_missing_shard(c, m):
    data = os.urandom(c.segment_size() + 1000)
    write(m.path('file'), data)
    sync(c, m)
    m.umount()
    fsck = ['--state', m.state, 'fsck']
    r = c.shardctl(*fsck, check=False)
    assert r.returncode == 0, r.stdout

    orphan = c.random_file('orphan', 100000)
    oid = c.put(orphan)
    r = c.shardctl(*fsck, check=False)
    assert r.returncode == 4 and f'orphan stripe {oid}' in r.stdout, (r.returncode, r.stdout)

    # A node holding shards of 'file' is gone: its segments are degraded.
    c.kill(2)
    r = c.shardctl(*fsck, check=False)
    assert r.returncode == 4, r.stdout
    assert re.search(r'/file: segment \d .*degraded: 5 of 6 shards', r.stdout), r.stdout


if __name__ == '__main__':
    run_fs_tests(globals())
