"""Fixture for integration tests: real shardfs-node processes on 127.0.0.1.

Each test gets a fresh temp dir and a cluster started with
`shardctl cluster start`. Whatever happens (assertion, exception, SIGTERM
from meson's timeout, Ctrl-C) every process the fixture started is stopped
by PID: `shardctl cluster stop`, then SIGKILL to any pid still alive whose
command line names one of our node dirs. On failure the temp dir is kept and
the tail of every node log is printed; on success it is removed.

Binaries come from $SHARDFS_BUILD_DIR (set by tests/integration/meson.build),
defaulting to ../../build relative to this file.

Usage in a test script:

    from cluster import Cluster, run_tests
    def test_something(c: Cluster): ...
    if __name__ == '__main__':
        run_tests(globals())
"""

import atexit
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_DIR = os.environ.get('SHARDFS_BUILD_DIR') or os.path.join(HERE, '..', '..', 'build')
SHARDCTL = os.path.join(BUILD_DIR, 'tools', 'shardctl')
NODE = os.environ.get('SHARDFS_NODE') or os.path.join(BUILD_DIR, 'netnode', 'shardfs-node')
DEFAULT_SEGMENT = 4 * 1024 * 1024
SKIP = 77  # meson's "skipped" exit status

# (pid, node_dir) of every node any fixture started; cleaned up at exit.
_started = set()
_tmp_dirs = []


def log(msg):
    print(msg, flush=True)


def _cmdline(pid):
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            return f.read().split(b'\0')
    except OSError:
        return []


def _state(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def node_alive(pid, node_dir):
    """True if pid is a live process started for node_dir (not recycled)."""
    st = _state(pid)
    if st is None or st in ('Z', 'X'):
        return False
    return os.fsencode(node_dir) in _cmdline(pid)


def _kill_started():
    for pid, node_dir in list(_started):
        if node_alive(pid, node_dir):
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        _started.discard((pid, node_dir))


def _cleanup_at_exit():
    _kill_started()


def _on_signal(signum, _frame):
    # Turn meson's SIGTERM (timeout) into an exception so finally blocks run.
    raise KeyboardInterrupt(f'signal {signum}')


atexit.register(_cleanup_at_exit)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


class CommandError(AssertionError):
    pass


class Cluster:
    """A local cluster in its own temp dir, driven through shardctl."""

    def __init__(self, name, nodes=6, k=4, m=2, capacity=None, zones=None, tmp=None,
                 insecure=False):
        self.tmp = tmp or tempfile.mkdtemp(prefix=f'shardfs-{name}-')
        self.dir = os.path.join(self.tmp, 'cluster')
        self.nodes, self.k, self.m = nodes, k, m
        self.capacity, self.zones = capacity, zones
        self.config = os.path.join(self.dir, 'client.conf')
        self.extra_dirs = []  # other cluster dirs started by this test
        # insecure=True: nodes without CURVE (--insecure-no-curve), for tests
        # that speak raw ZMTP (NULL mechanism) to a node, e.g. test_garbage.
        self.insecure = insecure

    # --- processes -------------------------------------------------------

    def start(self, dir=None, nodes=None, capacity=None, extra=()):
        dir = dir or self.dir
        args = ['cluster', 'start', '--dir', dir, '--nodes', str(nodes or self.nodes),
                '--k', str(self.k), '--m', str(self.m), '--node-binary', NODE]
        capacity = capacity or self.capacity
        if capacity:
            args += ['--capacity', str(capacity)]
        if self.zones:
            args += ['--zones', str(self.zones)]
        args += list(extra)
        # Another cluster dir of the same test joins our network (one
        # network per test), so configs may mix their endpoints.
        mine = os.path.join(self.dir, 'network.token')
        theirs = os.path.join(dir, 'network.token')
        if dir != self.dir and os.path.exists(mine) and not os.path.exists(theirs):
            os.makedirs(dir, exist_ok=True)
            shutil.copyfile(mine, theirs)
            os.chmod(theirs, 0o600)
        try:
            r = self.shardctl(*args, config=None, timeout=60)
        finally:
            self._track(dir)  # even a failed start may have left pids behind
        if dir != self.dir:
            self.extra_dirs.append(dir)
        return r

    def _track(self, dir):
        for node_dir in self.node_dirs(dir):
            pid = self.read_pid(node_dir)
            if pid:
                _started.add((pid, node_dir))

    def stop(self):
        for d in [self.dir] + self.extra_dirs:
            if os.path.isdir(d):
                r = self.shardctl('cluster', 'stop', '--dir', d, config=None, check=False,
                                  timeout=60)
                if r.returncode != 0:
                    log(f'cluster stop {d}: {r.stderr.strip()}')
        _kill_started()

    @staticmethod
    def node_dirs(dir):
        if not os.path.isdir(dir):
            return []
        names = [n for n in os.listdir(dir) if re.fullmatch(r'node-\d+', n)]
        names.sort(key=lambda n: int(n[5:]))
        return [os.path.join(dir, n) for n in names]

    @staticmethod
    def read_pid(node_dir):
        try:
            with open(os.path.join(node_dir, 'pid')) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def node_dir(self, i):
        return os.path.join(self.dir, f'node-{i}')

    def pid(self, i):
        return self.read_pid(self.node_dir(i))

    def endpoint(self, i, dir=None):
        with open(os.path.join(dir or self.dir, f'node-{i}', 'endpoint')) as f:
            return f.read().strip()

    def port(self, i):
        return int(self.endpoint(i).rsplit(':', 1)[1])

    def alive(self, i):
        pid = self.pid(i)
        return bool(pid) and node_alive(pid, self.node_dir(i))

    def signal(self, i, sig):
        os.kill(self.pid(i), sig)

    def kill(self, i):
        pid = self.pid(i)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while node_alive(pid, self.node_dir(i)) and time.monotonic() < deadline:
            time.sleep(0.02)

    # --- client commands -------------------------------------------------

    def shardctl(self, *args, config='default', check=True, timeout=300, input=None):
        cmd = [SHARDCTL]
        if config == 'default':
            config = self.config
        if config is not None:
            cmd += ['--config', config]
        cmd += [str(a) for a in args]
        # Commands without a client config (restore) find the network here.
        env = dict(os.environ)
        if self.insecure:
            env['SHARDFS_BENCH_NO_CURVE'] = '1'
        token = os.path.join(self.dir, 'network.token')
        if 'SHARDFS_NETWORK_FILE' not in env and os.path.exists(token):
            env['SHARDFS_NETWORK_FILE'] = token
        t0 = time.monotonic()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                               **({'input': input} if input is not None
                                  else {'stdin': subprocess.DEVNULL}))
        except subprocess.TimeoutExpired as e:
            raise CommandError(f'{" ".join(cmd)}: no answer after {timeout} s') from e
        r.elapsed = time.monotonic() - t0
        if check and r.returncode != 0:
            raise CommandError(f'{" ".join(cmd)} exited {r.returncode} after '
                               f'{r.elapsed:.1f} s\nstdout: {r.stdout}\nstderr: {r.stderr}')
        return r

    def put(self, path, **kw):
        r = self.shardctl('put', path, **kw)
        lines = [l.strip() for l in r.stdout.splitlines() if l.strip()]
        if not lines:
            raise CommandError(f'put {path} printed no object id; stderr: {r.stderr}')
        return lines[-1]

    def get(self, oid, out, **kw):
        return self.shardctl('get', oid, out, **kw)

    def segment_size(self):
        try:
            with open(self.config) as f:
                m = re.search(r'^\s*segment_size\s*=\s*(\d+)', f.read(), re.M)
                return int(m.group(1)) if m else DEFAULT_SEGMENT
        except OSError:
            return DEFAULT_SEGMENT

    def write_config(self, path, endpoints, key_file=None):
        """A client.conf of our own (client_config.h keys) for other node sets or keys."""
        key_file = key_file or os.path.join(self.dir, 'volume.key')
        nodes = ', '.join(f'"{e}"' for e in endpoints)
        with open(path, 'w') as f:
            f.write('[volume]\n'
                    f'key_file = "{key_file}"\n'
                    f'identity_file = "{os.path.join(self.dir, "client.id")}"\n'
                    f'k = {self.k}\nm = {self.m}\n'
                    f'segment_size = {self.segment_size()}\n'
                    '[cluster]\n'
                    f'nodes = [{nodes}]\n'
                    f'network_file = "{os.path.join(self.dir, "network.token")}"\n')
        os.chmod(path, 0o600)
        return path

    # --- files -----------------------------------------------------------

    def random_file(self, name, size):
        path = os.path.join(self.tmp, name)
        with open(path, 'wb') as f:
            left = size
            while left:
                chunk = min(left, 8 << 20)
                f.write(os.urandom(chunk))
                left -= chunk
        return path

    def path(self, name):
        return os.path.join(self.tmp, name)

    def shard_files(self, dir=None):
        out = []
        for node_dir in self.node_dirs(dir or self.dir):
            for root, _dirs, files in os.walk(os.path.join(node_dir, 'shards')):
                out += [os.path.join(root, f) for f in files if not f.endswith('.tmp')]
        return sorted(out)

    def logs_tail(self, lines=25):
        text = []
        for d in [self.dir] + self.extra_dirs:
            for node_dir in self.node_dirs(d):
                try:
                    with open(os.path.join(node_dir, 'log'), errors='replace') as f:
                        tail = f.readlines()[-lines:]
                except OSError:
                    tail = ['(no log)\n']
                text.append(f'--- {node_dir}/log (last {lines} lines) ---\n' + ''.join(tail))
        return ''.join(text)

    def logs_contain(self, pattern):
        rx = re.compile(pattern, re.I)
        for node_dir in self.node_dirs(self.dir):
            try:
                with open(os.path.join(node_dir, 'log'), errors='replace') as f:
                    if rx.search(f.read()):
                        return True
            except OSError:
                pass
        return False


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def assert_same(a, b):
    sa, sb = os.path.getsize(a), os.path.getsize(b)
    assert sa == sb, f'{b}: {sb} bytes, expected {sa}'
    assert sha256_file(a) == sha256_file(b), f'{b}: contents differ from {a}'


def get_and_compare(c, objs, tag, timeout=300):
    """Gets every (source file, object id) of `objs` and compares it with its
    source byte for byte; the copies are removed."""
    for src, oid in objs:
        out = c.path(os.path.basename(src) + '.' + tag)
        c.get(oid, out, timeout=timeout)
        assert_same(src, out)
        os.unlink(out)


def assert_fails(c, r, *words):
    """A command failed cleanly: non-zero exit, a message on stderr naming
    one of `words`, and no crash."""
    assert r.returncode != 0, f'expected failure, got exit 0\nstdout: {r.stdout}'
    # The temp dir's name holds the test's name: keep it out of the match.
    msg = r.stderr.replace(c.tmp, 'TMP').lower()
    assert msg.strip(), 'failed without a message on stderr'
    assert any(w.lower() in msg for w in words), \
        f'message does not mention any of {words}: {r.stderr.strip()}'
    assert 'terminate called' not in msg and 'core dumped' not in msg, r.stderr


def check_binaries():
    missing = [p for p in (SHARDCTL, NODE) if not os.access(p, os.X_OK)]
    if missing:
        log(f'SKIP: not built: {", ".join(missing)}')
        sys.exit(SKIP)


def run_tests(namespace, start=True, **cluster_args):
    """Runs every test_* function of a script, each with a fresh cluster."""
    check_binaries()
    only = sys.argv[1:]
    tests = [(n, f) for n, f in namespace.items()
             if n.startswith('test_') and callable(f) and (not only or n in only)]
    failed = []
    removers = []
    t_all = time.monotonic()
    for name, fn in tests:
        args = dict(cluster_args)
        args.update(getattr(fn, 'cluster_args', {}))
        c = Cluster(name, **args)
        t0 = time.monotonic()
        ok = False
        try:
            if start and getattr(fn, 'start', True):
                c.start()
            fn(c)
            ok = True
        except BaseException as e:  # KeyboardInterrupt too: we must clean up
            log(f'FAIL {name}: {type(e).__name__}: {e}')
            traceback.print_exc()
            log(c.logs_tail())
            if not isinstance(e, Exception):
                log(f'kept {c.tmp}')
                raise
        finally:
            c.stop()
        dt = time.monotonic() - t0
        if ok:
            log(f'ok   {name} ({dt:.1f} s)')
            # Removing a cluster dir takes seconds on a disk mounted with
            # `discard` (each node has hundreds of shard dirs): overlap it
            # with the next test.
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


def cluster_args(**kw):
    """Decorator: per-test Cluster arguments (nodes=7, capacity=...)."""
    def wrap(fn):
        fn.cluster_args = kw
        return fn
    return wrap


def no_start(fn):
    """Decorator: the test starts (or fails to start) the cluster itself."""
    fn.start = False
    return fn
