"""POSIX behaviour of a shardfs mount on a real local cluster: every
operation the drive implements, with its error cases (issue 3).

Run: python3 tests/fs/test_posix.py [test_name ...]
(SHARDFS_BUILD_DIR selects the build; meson sets it.)
"""

import ctypes
import errno
import fcntl
import os
import socket
import sqlite3
import stat
import subprocess
import time

from fsmount import Mount, mount_opts, read, run_fs_tests, unmounted, write

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
NOBODY = 65534


def renameat2(old, new, flags):
    r = libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags)
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


def expect_errno(err, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except OSError as e:
        assert e.errno == err, f'{fn.__name__}{args}: errno {e.errno} ({e.strerror}), expected {errno.errorcode[err]}'
        return
    raise AssertionError(f'{fn.__name__}{args} succeeded, expected {errno.errorcode[err]}')


def status(path):
    return os.getxattr(path, 'user.shardfs.status').decode()


def wait_stored(path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = status(path)
        if s.startswith('stored'):
            return s
        time.sleep(0.2)
    raise AssertionError(f'{path} still "{status(path)}" after {timeout} s')


def as_user(code, uid=NOBODY, gid=NOBODY, umask=0o022):
    """Runs python code as another user (permission and ownership checks)."""
    r = subprocess.run(['python3', '-c', f'import os\nos.umask({umask})\n{code}'],
                       user=uid, group=gid, extra_groups=[], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, f'as uid {uid}: {r.stderr}'
    return r.stdout


# --- files ----------------------------------------------------------------

def test_create_open_flags(c, m):
    p = m.path('f')
    write(p, b'hello')
    assert read(p) == b'hello'
    expect_errno(errno.EEXIST, os.open, p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    assert os.stat(p).st_size == 0
    write(p, b'abc')
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b'def')
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b'ghi')  # O_APPEND: still at the end
    os.close(fd)
    assert read(p) == b'abcdefghi'
    expect_errno(errno.ENOENT, os.open, m.path('nope'), os.O_RDONLY)
    expect_errno(errno.ENOTDIR, os.open, m.path('f', 'x'), os.O_RDONLY)
    expect_errno(errno.EISDIR, os.open, m.dir, os.O_WRONLY)


def test_read_write_offsets_and_segments(c, m):
    seg = c.segment_size()
    p = m.path('big')
    data = bytearray(os.urandom(2 * seg + 12345))
    write(p, data)
    assert read(p) == data
    wait_stored(p)
    # Overwrite across a segment boundary of a stored file (copy-on-write).
    patch = os.urandom(5000)
    with open(p, 'r+b') as f:
        f.seek(seg - 2500)
        f.write(patch)
    data[seg - 2500:seg + 2500] = patch
    assert read(p) == data
    wait_stored(p)
    assert read(p) == data
    # Reads at odd offsets and past the end.
    with open(p, 'rb') as f:
        f.seek(seg + 7)
        assert f.read(100) == data[seg + 7:seg + 107]
        f.seek(len(data) + 10)
        assert f.read(10) == b''


def test_sparse_and_seek(c, m):
    seg = c.segment_size()
    p = m.path('sparse')
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b'X' * 100, 3 * seg + 10)
    os.fsync(fd)
    assert os.fstat(fd).st_size == 3 * seg + 110
    assert os.pread(fd, 20, seg) == b'\0' * 20
    assert os.pread(fd, 20, 3 * seg) == b'\0' * 10 + b'X' * 10
    assert os.lseek(fd, 0, os.SEEK_DATA) == 3 * seg
    assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
    assert os.lseek(fd, 3 * seg + 20, os.SEEK_HOLE) == 3 * seg + 110
    expect_errno(errno.ENXIO, os.lseek, fd, 3 * seg + 200, os.SEEK_DATA)
    os.close(fd)
    d = read(p)
    assert d[:3 * seg + 10] == b'\0' * (3 * seg + 10) and d[3 * seg + 10:] == b'X' * 100


def test_truncate_both_ways(c, m):
    seg = c.segment_size()
    p = m.path('t')
    data = os.urandom(seg + 1000)
    write(p, data)
    wait_stored(p)
    os.truncate(p, 10)
    assert read(p) == data[:10]
    os.truncate(p, seg + 50)
    d = read(p)
    assert d[:10] == data[:10] and d[10:] == b'\0' * (seg + 40), 'truncate up must read zeros'
    with open(p, 'r+b') as f:
        f.truncate(5)
    assert read(p) == data[:5]
    expect_errno(errno.EISDIR, os.truncate, m.dir, 0)


def test_unlink_open_file(c, m):
    p = m.path('u')
    data = os.urandom(300000)
    write(p, data)
    fd = os.open(p, os.O_RDWR)
    os.unlink(p)
    assert not os.path.exists(p)
    assert os.pread(fd, len(data), 0) == data
    os.pwrite(fd, b'more', len(data))
    assert os.fstat(fd).st_nlink == 0
    assert os.pread(fd, 4, len(data)) == b'more'
    os.close(fd)
    expect_errno(errno.ENOENT, os.unlink, p)


def test_fallocate(c, m):
    p = m.path('fa')
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    os.posix_fallocate(fd, 0, 100000)
    assert os.fstat(fd).st_size == 100000
    assert os.pread(fd, 10, 5000) == b'\0' * 10
    os.close(fd)


# --- directories ----------------------------------------------------------

def test_mkdir_rmdir(c, m):
    d = m.path('d')
    os.mkdir(d)
    expect_errno(errno.EEXIST, os.mkdir, d)
    write(os.path.join(d, 'x'), b'1')
    expect_errno(errno.ENOTEMPTY, os.rmdir, d)
    expect_errno(errno.ENOTDIR, os.rmdir, os.path.join(d, 'x'))
    expect_errno(errno.EISDIR, os.unlink, d)
    assert os.stat(m.dir).st_nlink == 3
    os.unlink(os.path.join(d, 'x'))
    os.rmdir(d)
    assert os.stat(m.dir).st_nlink == 2
    expect_errno(errno.ENOENT, os.rmdir, d)


def test_names(c, m):
    ok = 'n' * 255
    write(m.path(ok), b'x')
    assert ok in os.listdir(m.dir)
    expect_errno(errno.ENAMETOOLONG, os.open, m.path('n' * 256), os.O_CREAT | os.O_WRONLY)
    expect_errno(errno.ENAMETOOLONG, os.mkdir, m.path('m' * 256))
    odd = 'sp ace\tü\x01'
    write(m.path(odd), b'y')
    assert read(m.path(odd)) == b'y'


def test_readdir_stable_while_changing(c, m):
    d = m.path('many')
    os.mkdir(d)
    names = [f'f{i:04d}' for i in range(600)]
    for n in names:
        write(os.path.join(d, n), b'')
    seen = []
    with os.scandir(d) as it:
        for i, e in enumerate(it):
            seen.append(e.name)
            if i == 100:  # change the directory in the middle of the listing
                for j in range(50):
                    write(os.path.join(d, f'new{j}'), b'')
                os.unlink(os.path.join(d, 'f0599'))
    originals = [s for s in seen if s.startswith('f')]
    assert len(originals) == len(set(originals)), 'an entry was returned twice'
    assert set(names[:599]) <= set(originals), 'an unchanged entry was skipped'
    assert sorted(os.listdir(d)) == sorted(names[:599] + [f'new{j}' for j in range(50)])


def test_rename(c, m):
    a, b = m.path('a'), m.path('b')
    write(a, b'A')
    write(b, b'B')
    expect_errno(errno.EEXIST, renameat2, a, b, RENAME_NOREPLACE)
    renameat2(a, b, RENAME_EXCHANGE)
    assert read(a) == b'B' and read(b) == b'A'
    expect_errno(errno.ENOENT, renameat2, a, m.path('none'), RENAME_EXCHANGE)
    os.rename(a, b)  # replace
    assert not os.path.exists(a) and read(b) == b'B'
    os.makedirs(m.path('d1', 'sub'))
    os.mkdir(m.path('d2'))
    write(m.path('d2', 'x'), b'')
    expect_errno(errno.EINVAL, os.rename, m.path('d1'), m.path('d1', 'sub', 'in'))
    expect_errno(errno.ENOTEMPTY, os.rename, m.path('d1'), m.path('d2'))
    expect_errno(errno.EISDIR, os.rename, b, m.path('d1'))
    expect_errno(errno.ENOTDIR, os.rename, m.path('d1'), b)
    os.rename(m.path('d1', 'sub'), m.path('d2', 'sub'))  # across directories
    assert os.stat(m.path('d1')).st_nlink == 2 and os.stat(m.path('d2')).st_nlink == 3
    os.mkdir(m.path('empty'))
    os.rename(m.path('d1'), m.path('empty'))  # directory over an empty directory
    assert os.path.isdir(m.path('empty')) and not os.path.exists(m.path('d1'))
    renameat2(m.path('d2'), b, RENAME_EXCHANGE)  # directory <-> file
    assert os.path.isdir(b) and read(m.path('d2')) == b'B'
    assert os.path.exists(os.path.join(b, 'sub'))


def test_links(c, m):
    p, q = m.path('orig'), m.path('hard')
    write(p, b'data')
    os.link(p, q)
    assert os.stat(p).st_nlink == 2 and os.stat(p).st_ino == os.stat(q).st_ino
    os.unlink(p)
    assert read(q) == b'data' and os.stat(q).st_nlink == 1
    expect_errno(errno.EEXIST, os.link, q, q)
    os.mkdir(m.path('dir'))
    expect_errno(errno.EPERM, os.link, m.path('dir'), m.path('dirlink'))
    os.symlink('hard', m.path('sym'))
    assert os.readlink(m.path('sym')) == 'hard'
    assert read(m.path('sym')) == b'data'
    assert os.lstat(m.path('sym')).st_size == 4 and stat.S_ISLNK(os.lstat(m.path('sym')).st_mode)
    expect_errno(errno.EINVAL, os.readlink, q)
    os.symlink('/' + 'x' * 1000, m.path('longsym'))
    assert os.readlink(m.path('longsym')) == '/' + 'x' * 1000


def test_mknod(c, m):
    os.mkfifo(m.path('fifo'), 0o640)
    assert stat.S_ISFIFO(os.stat(m.path('fifo')).st_mode)
    s = socket.socket(socket.AF_UNIX)
    s.bind(m.path('sock'))
    s.close()
    assert stat.S_ISSOCK(os.stat(m.path('sock')).st_mode)
    os.mknod(m.path('reg'), 0o600 | stat.S_IFREG)
    assert stat.S_ISREG(os.stat(m.path('reg')).st_mode)


# --- attributes -----------------------------------------------------------

def test_chmod_chown_utimens(c, m):
    p = m.path('attr')
    write(p, b'x')
    os.chmod(p, 0o4751)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o4751
    os.chown(p, 1234, 5678)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.utime(p, ns=(1_000_000_123, 2_000_000_456))
    st = os.stat(p)
    assert st.st_atime_ns == 1_000_000_123 and st.st_mtime_ns == 2_000_000_456
    # UTIME_OMIT for atime, UTIME_NOW for mtime, through utimensat.
    class Timespec(ctypes.Structure):
        _fields_ = [('tv_sec', ctypes.c_long), ('tv_nsec', ctypes.c_long)]
    UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
    ts = (Timespec * 2)(Timespec(0, UTIME_OMIT), Timespec(0, UTIME_NOW))
    before = time.time_ns()
    assert libc.utimensat(AT_FDCWD, os.fsencode(p), ts, 0) == 0
    st = os.stat(p)
    assert st.st_atime_ns == 1_000_000_123
    assert st.st_mtime_ns >= before - 1_000_000_000
    ctime = st.st_ctime_ns
    time.sleep(0.01)
    os.chmod(p, 0o600)
    assert os.stat(p).st_ctime_ns > ctime


def test_xattrs(c, m):
    p = m.path('x')
    write(p, b'1')
    os.setxattr(p, 'user.a', b'va')
    os.setxattr(p, 'user.b', b'')
    assert os.getxattr(p, 'user.a') == b'va'
    assert sorted(os.listxattr(p)) == ['user.a', 'user.b']
    expect_errno(errno.EEXIST, os.setxattr, p, 'user.a', b'x', os.XATTR_CREATE)
    expect_errno(errno.ENODATA, os.setxattr, p, 'user.c', b'x', os.XATTR_REPLACE)
    os.setxattr(p, 'user.a', b'v2', os.XATTR_REPLACE)
    assert os.getxattr(p, 'user.a') == b'v2'
    os.removexattr(p, 'user.a')
    expect_errno(errno.ENODATA, os.getxattr, p, 'user.a')
    expect_errno(errno.ENODATA, os.removexattr, p, 'user.a')
    big = os.urandom(60000)
    os.setxattr(p, 'user.big', big)
    assert os.getxattr(p, 'user.big') == big
    os.mkdir(m.path('xd'))
    os.setxattr(m.path('xd'), 'user.dir', b'd')
    assert os.getxattr(m.path('xd'), 'user.dir') == b'd'
    assert 'stored' in status(p)
    expect_errno(errno.EPERM, os.setxattr, p, 'user.shardfs.status', b'x')


def test_statfs(c, m):
    s = os.statvfs(m.dir)
    assert s.f_blocks > 0 and 0 < s.f_bavail <= s.f_blocks
    assert s.f_namemax == 255


def test_locks_are_local(c, m):
    p = m.path('lock')
    write(p, b'x')
    with open(p, 'r+b') as f1, open(p, 'r+b') as f2:
        fcntl.flock(f1, fcntl.LOCK_EX)
        try:
            fcntl.flock(f2, fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise AssertionError('second flock succeeded')
        except BlockingIOError:
            pass
        fcntl.flock(f1, fcntl.LOCK_UN)
        fcntl.lockf(f1, fcntl.LOCK_EX)  # POSIX lock
        fcntl.lockf(f1, fcntl.LOCK_UN)


# --- ownership and permissions (non-root callers) --------------------------

def test_ownership_umask_setgid(c, m):
    pub = m.path('pub')
    os.mkdir(pub)
    os.chmod(pub, 0o1777)
    as_user(f'''
open("{pub}/mine", "w").write("x")
os.mkdir("{pub}/dmine", 0o777)
os.symlink("mine", "{pub}/lmine")
''', umask=0o027)
    st = os.stat(os.path.join(pub, 'mine'))
    assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY), (st.st_uid, st.st_gid)
    assert stat.S_IMODE(st.st_mode) == 0o640, oct(st.st_mode)
    assert stat.S_IMODE(os.stat(os.path.join(pub, 'dmine')).st_mode) == 0o750
    assert os.lstat(os.path.join(pub, 'lmine')).st_uid == NOBODY
    # setgid directory: new entries take its group; subdirectories keep setgid.
    sg = m.path('sg')
    os.mkdir(sg)
    os.chown(sg, 0, 4242)
    os.chmod(sg, 0o2777)
    as_user(f'''
open("{sg}/f", "w").write("x")
os.mkdir("{sg}/sub")
''')
    assert os.stat(os.path.join(sg, 'f')).st_gid == 4242
    sub = os.stat(os.path.join(sg, 'sub'))
    assert sub.st_gid == 4242 and sub.st_mode & stat.S_ISGID
    # Permission checks by the kernel (default_permissions).
    private = m.path('private')
    write(private, b'secret')
    os.chmod(private, 0o600)
    out = as_user(f'''
try:
    open("{private}").read()
    print("read")
except PermissionError:
    print("denied")
try:
    os.unlink("{pub}/../private")
except PermissionError:
    print("denied2")
''')
    assert out.split() == ['denied', 'denied2'], out
    # Sticky /pub: nobody cannot remove root's file there.
    write(os.path.join(pub, 'roots'), b'')
    out = as_user(f'''
try:
    os.unlink("{pub}/roots")
    print("removed")
except PermissionError:
    print("sticky")
''')
    assert out.strip() == 'sticky'


# --- durability -------------------------------------------------------------

def test_remount_and_wiped_cache(c, m):
    files = {f'd/f{i}': os.urandom(i * 7919) for i in range(20)}
    files['big'] = os.urandom(3 * c.segment_size() + 5)
    os.mkdir(m.path('d'))
    for name, data in files.items():
        write(m.path(name), data)
    os.setxattr(m.path('big'), 'user.k', b'v')
    os.symlink('big', m.path('lnk'))
    for name in files:
        wait_stored(m.path(name))
    m.umount()
    m.mount()
    for name, data in files.items():
        assert read(m.path(name)) == data, name
    m.umount()
    # All data from the nodes: no cache, no staging.
    import shutil
    shutil.rmtree(os.path.join(m.state, 'cache'))
    m.mount()
    for name, data in files.items():
        assert read(m.path(name)) == data, name
    assert os.getxattr(m.path('big'), 'user.k') == b'v'
    assert os.readlink(m.path('lnk')) == 'big'


@unmounted
def test_lease_refuses_second_mount(c, m):
    m.mount()
    other = Mount(c, name='mnt2', state=m.state)
    r = other.mount(check=False)
    assert r.returncode != 0 and 'already mounted' in r.stderr, r.stderr


def test_kill9_then_remount(c, m):
    closed = {}
    for i in range(30):
        data = os.urandom(20000 + i * 50000)
        write(m.path(f'c{i}'), data)
        closed[f'c{i}'] = data
    synced = os.urandom(2 * c.segment_size())
    fd = os.open(m.path('synced'), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, synced)
    os.fsync(fd)
    fd2 = os.open(m.path('open-unsynced'), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd2, os.urandom(100000))
    m.kill9()
    for f in (fd, fd2):
        try:
            os.close(f)  # ENOTCONN: the mount is dead
        except OSError:
            pass
    db = sqlite3.connect(os.path.join(m.state, 'meta.db'))
    assert db.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
    db.close()
    m.mount()
    for name, data in closed.items():
        assert read(m.path(name)) == data, name
    assert read(m.path('synced')) == synced
    for name in list(closed)[:5] + ['synced']:
        wait_stored(m.path(name), timeout=120)
    # No staging file is left without a reference once all is uploaded.
    deadline = time.monotonic() + 120
    while os.listdir(os.path.join(m.state, 'staging')) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = os.listdir(os.path.join(m.state, 'staging'))
    # open-unsynced was never committed: its staging file is gone too.
    assert not left, f'staging not drained: {left[:5]}'


@mount_opts('allow_other', 'upload=sync')
def test_upload_sync_mode(c, m):
    data = os.urandom(c.segment_size() + 100)
    write(m.path('s'), data)
    s = status(m.path('s'))
    assert s.startswith('stored'), s  # close waited for the cluster
    assert read(m.path('s')) == data


if __name__ == '__main__':
    run_fs_tests(globals())
