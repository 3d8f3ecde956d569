"""Fixture for the drive's tests: a real local cluster (tests/integration/
cluster.py, started with the built shardctl) and a real shardfs mount.

Every test gets a fresh cluster and mount. Whatever happens, the mount is
unmounted with `fusermount3 -u` (lazily if it is busy), the shardfs daemon is
killed by the pid recorded in its lease file, and the nodes are stopped by
pid. Exits 77 (meson's skip) with a loud message when /dev/fuse or
fusermount3 is missing.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))

from cluster import BUILD_DIR, SKIP, Cluster, check_binaries, log  # noqa: E402

SHARDFS = os.path.join(BUILD_DIR, 'fs', 'shardfs')

_mounts = []  # every Mount still possibly mounted, cleaned up at exit


def write(path, data, mode='wb'):
    with open(path, mode) as f:
        f.write(data)


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def read_uncached(path):
    """Reads through the mount, not the kernel's page cache of the file (the
    mount keeps file pages cached across opens)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                return b''.join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)


def check_fuse():
    problems = []
    if not os.path.exists('/dev/fuse'):
        problems.append('/dev/fuse does not exist (no FUSE in this kernel/container)')
    if not shutil.which('fusermount3'):
        problems.append('fusermount3 is not installed (apt install fuse3)')
    if not os.access(SHARDFS, os.X_OK):
        problems.append(f'{SHARDFS} is not built')
    if problems:
        log('*' * 70)
        log('SKIP: the drive tests need a real FUSE mount, and:')
        for p in problems:
            log(f'  - {p}')
        log('*' * 70)
        sys.exit(SKIP)


def _pid_alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] not in ('Z', 'X')
    except (OSError, IndexError):
        return False


class Mount:
    """One shardfs mount of a cluster's volume."""

    def __init__(self, c, name='mnt', state=None, opts=('allow_other',), log_to_file=False):
        self.c = c
        # The daemon's own log into self.log too (else syslog once detached).
        self.log_to_file = log_to_file
        self.dir = os.path.join(c.tmp, name)
        self.state = state or os.path.join(c.tmp, 'state')
        self.opts = list(opts)
        self.log = os.path.join(c.tmp, f'{name}.log')
        os.makedirs(self.dir, exist_ok=True)
        self.pid = None
        # Other users (the permission tests) must reach the mount point.
        os.chmod(c.tmp, 0o755)

    def args(self, extra_opts=()):
        opts = self.opts + list(extra_opts)
        a = [SHARDFS, '--config', self.c.config, '--state', self.state, self.dir]
        if self.log_to_file:
            a += ['--log-file', self.log]
        if opts:
            a += ['-o', ','.join(opts)]
        return a

    def mount(self, extra_opts=(), check=True):
        _mounts.append(self)
        with open(self.log, 'a') as logf:
            r = subprocess.run(self.args(extra_opts), stdout=logf, stderr=subprocess.PIPE,
                               text=True, timeout=60)
        if r.returncode != 0:
            if check:
                raise AssertionError(f'shardfs exited {r.returncode}: {r.stderr}')
            return r
        assert os.path.ismount(self.dir), f'{self.dir} is not a mount point after shardfs'
        self.pid = self.lease_pid()
        return r

    def lease_pid(self):
        try:
            with open(os.path.join(self.state, 'lease')) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def umount(self):
        if os.path.ismount(self.dir):
            r = subprocess.run(['fusermount3', '-u', self.dir], capture_output=True, text=True)
            if r.returncode != 0:
                log(f'fusermount3 -u {self.dir}: {r.stderr.strip()}; lazy unmount')
                subprocess.run(['fusermount3', '-u', '-z', self.dir])
        # Unmount returns before the daemon finishes its teardown.
        deadline = time.monotonic() + 60
        while self.pid and _pid_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.pid and _pid_alive(self.pid):
            log(f'shardfs pid {self.pid} still alive after unmount: killing it')
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def kill9(self):
        pid = self.pid or self.lease_pid()
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            time.sleep(0.02)
        subprocess.run(['fusermount3', '-u', '-z', self.dir], capture_output=True)
        self.pid = None

    def cleanup(self):
        try:
            self.umount()
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            log(f'cleanup of {self.dir}: {e}')


def run_fs_tests(namespace, **cluster_args):
    """Runs every test_* function of a script as fn(cluster, mount)."""
    check_fuse()
    check_binaries()
    only = sys.argv[1:]
    tests = [(n, f) for n, f in namespace.items()
             if n.startswith('test_') and callable(f) and (not only or n in only)]
    failed = []
    removers = []
    t_all = time.monotonic()
    for name, fn in tests:
        c = Cluster(name, **cluster_args)
        m = None
        t0 = time.monotonic()
        ok = False
        try:
            c.start()
            for key, value in getattr(fn, 'client_conf', {}).items():
                set_client_conf(c, key, value)
            m = Mount(c, opts=getattr(fn, 'mount_opts', ('allow_other',)))
            if getattr(fn, 'mounted', True):
                m.mount()
            fn(c, m)
            ok = True
        except BaseException as e:  # KeyboardInterrupt too: we must clean up
            log(f'FAIL {name}: {type(e).__name__}: {e}')
            traceback.print_exc()
            for mm in _mounts:
                if os.path.exists(mm.log):
                    with open(mm.log, errors='replace') as f:
                        log(f'--- {mm.log} ---\n' + ''.join(f.readlines()[-40:]))
            if not isinstance(e, Exception):
                for mm in _mounts:
                    mm.cleanup()
                c.stop()
                raise
        finally:
            for mm in _mounts:
                mm.cleanup()
            _mounts.clear()
            c.stop()
        dt = time.monotonic() - t0
        if ok:
            log(f'ok   {name} ({dt:.1f} s)')
            # Removing a cluster dir takes seconds on a disk mounted with
            # `discard` (cluster.py run_tests): overlap it with the next test.
            t = threading.Thread(target=shutil.rmtree, args=(c.tmp, True))
            t.start()
            removers.append(t)
        else:
            failed.append(name)
            log(f'kept {c.tmp} for inspection')
    for t in removers:
        t.join()
    log(f'{len(tests) - len(failed)}/{len(tests)} passed in {time.monotonic() - t_all:.1f} s')
    sys.exit(1 if failed else 0)


def mount_opts(*opts):
    def wrap(fn):
        fn.mount_opts = opts
        return fn
    return wrap


def set_client_conf(c, key, value):
    """Sets `key = value` in the cluster's client.conf (shardfs.conf(5)),
    replacing the line if the key is there, else adding it under [cluster]."""
    with open(c.config) as f:
        text = f.read()
    line = f'{key} = {value}'
    text, n = re.subn(rf'^\s*{re.escape(key)}\s*=.*$', line, text, flags=re.M)
    if n == 0:
        text = text.replace('[cluster]\n', f'[cluster]\n{line}\n', 1)
        assert line in text, f'no [cluster] table in {c.config}'
    with open(c.config, 'w') as f:
        f.write(text)


def client_conf(**kv):
    """Decorator: client.conf settings for the test, e.g. timeout_ms=2000
    (applied after the cluster starts, before the mount)."""
    def wrap(fn):
        fn.client_conf = kv
        return fn
    return wrap


def unmounted(fn):
    """Decorator: the test mounts by itself."""
    fn.mounted = False
    return fn
