"""Memory and descriptors of a shardfs mount stay bounded (issue 3, Data):
with default settings the mount's resident memory stays under 300 MiB while
a 4 GiB file is written (and sampled back), and while 50,000 small files are
rsynced in (rsync -a --inplace); its open descriptors stay far below the
machine's limit of 20,000 during the rsync (so nothing holds a descriptor
per inode or per cached segment).

A thread samples the mount process every 0.2 s: VmRSS and VmHWM (the
kernel's own peak, which catches a spike between samples) from
/proc/PID/status, and the entries of /proc/PID/fd. During the big write it
also sums STATE/staging, which backpressure bounds (-o staging_limit,
default 1 GiB).

SHARDFS_MEMORY_BIG_MIB and SHARDFS_MEMORY_FILES shrink the workloads for a
quick local run; the defaults are the issue's figures.

Run: python3 tests/fs/test_memory.py [test_name ...]
"""

import os
import random
import subprocess
import threading
import time

from fsmount import log, run_fs_tests

MIB = 1 << 20
RSS_LIMIT_MIB = 300
FD_LIMIT = 1000            # "far below 20,000": a few hundred is normal
STAGING_LIMIT = 1 << 30    # the default -o staging_limit
BIG_MIB = int(os.environ.get('SHARDFS_MEMORY_BIG_MIB', 4096))
SMALL_FILES = int(os.environ.get('SHARDFS_MEMORY_FILES', 50000))
READ_EVERY = 128           # MiB: the big file is read back one MiB in 128


def proc_status_kib(pid, field):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise AssertionError(f'{field} missing from /proc/{pid}/status')


def dir_bytes(path):
    total = 0
    try:
        with os.scandir(path) as it:
            for e in it:
                try:
                    total += e.stat(follow_symlinks=False).st_size
                except OSError:
                    pass  # uploaded and moved to the cache meanwhile
    except OSError:
        pass
    return total


class Sampler(threading.Thread):
    """Peaks of the mount's RSS, descriptors and (optionally) staging bytes."""

    def __init__(self, pid, staging=None):
        super().__init__(daemon=True)
        self.pid = pid
        self.staging = staging
        self.max_rss_kib = 0
        self.max_fds = 0
        self.max_staging = 0
        self.samples = 0
        self.error = None
        self._halt = threading.Event()

    def run(self):
        try:
            while not self._halt.is_set():
                self.max_rss_kib = max(self.max_rss_kib, proc_status_kib(self.pid, 'VmRSS'))
                self.max_fds = max(self.max_fds, len(os.listdir(f'/proc/{self.pid}/fd')))
                if self.staging:
                    self.max_staging = max(self.max_staging, dir_bytes(self.staging))
                self.samples += 1
                self._halt.wait(0.2)
        except Exception as e:  # noqa: BLE001 - reported by finish()
            self.error = e

    def finish(self, what):
        self._halt.set()
        self.join()
        assert self.error is None, f'sampling the mount failed: {self.error}'
        assert self.samples > 0, 'no sample taken'
        hwm = proc_status_kib(self.pid, 'VmHWM')
        log(f'{what}: peak RSS sampled {self.max_rss_kib / 1024:.0f} MiB, VmHWM '
            f'{hwm / 1024:.0f} MiB, peak fds {self.max_fds}'
            + (f', peak staging {self.max_staging / MIB:.0f} MiB' if self.staging else '')
            + f' ({self.samples} samples)')
        assert self.max_rss_kib < RSS_LIMIT_MIB * 1024, \
            f'{what}: RSS {self.max_rss_kib / 1024:.0f} MiB >= {RSS_LIMIT_MIB} MiB'
        assert hwm < RSS_LIMIT_MIB * 1024, \
            f'{what}: VmHWM {hwm / 1024:.0f} MiB >= {RSS_LIMIT_MIB} MiB'
        assert self.max_fds < FD_LIMIT, f'{what}: {self.max_fds} open descriptors'
        return hwm


def block(i, pattern):
    """1 MiB number i of the stream: a random pattern stamped with i, so a
    block read back at the wrong offset changes the checksum."""
    return i.to_bytes(8, 'little') + pattern[8:]


def test_big_file_write_and_read_back(c, m):
    pattern = os.urandom(MIB)
    path = m.path('big')
    sampler = Sampler(m.pid, staging=os.path.join(m.state, 'staging'))
    sampler.start()
    t0 = time.monotonic()
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        for i in range(BIG_MIB):
            view = memoryview(block(i, pattern))
            while view:
                view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    t_write = time.monotonic() - t0
    assert os.stat(path).st_size == BIG_MIB * MIB
    # Read back every READ_EVERY-th MiB through the mount (not the kernel's
    # page cache): enough to catch misplaced or stale blocks and to run the
    # read path beside the draining uploads, in a fraction of the time of
    # all 4 GiB.
    t0 = time.monotonic()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        checked = 0
        for i in range(0, BIG_MIB, READ_EVERY):
            b = os.pread(fd, MIB, i * MIB)
            assert b == block(i, pattern), f'MiB {i} of the big file reads back wrong'
            checked += 1
    finally:
        os.close(fd)
    t_read = time.monotonic() - t0
    # Uploads finish in the background; memory must stay bounded through them.
    deadline = time.monotonic() + 600
    while not os.getxattr(path, 'user.shardfs.status').startswith(b'stored'):
        assert time.monotonic() < deadline, 'upload of the big file did not finish'
        time.sleep(0.5)
    t_all = time.monotonic() - t0 + t_write
    sampler.finish(f'{BIG_MIB} MiB file')
    # Backpressure: staging holds about the limit plus the segments being
    # written (one per writer) and one sample's worth of slack.
    assert sampler.max_staging <= STAGING_LIMIT + 64 * MIB, \
        f'staging held {sampler.max_staging / MIB:.0f} MiB (limit {STAGING_LIMIT / MIB:.0f})'
    log(f'{BIG_MIB} MiB: write {BIG_MIB / t_write:.0f} MiB/s, read back {checked} MiB '
        f'at {checked / t_read:.0f} MiB/s, all stored after {t_all:.0f} s')


def make_small_tree(root, files):
    """`files` tiny files in directories of 500, written as fast as python can."""
    per_dir = 500
    for d in range((files + per_dir - 1) // per_dir):
        sub = os.path.join(root, f'd{d:03d}')
        os.makedirs(sub)
        for i in range(d * per_dir, min(files, (d + 1) * per_dir)):
            fd = os.open(os.path.join(sub, f'f{i}'), os.O_CREAT | os.O_WRONLY, 0o644)
            os.write(fd, b'%d\n' % i * (i % 7 + 1))
            os.close(fd)


def test_rsync_many_small_files(c, m):
    src = c.path('small')
    t0 = time.monotonic()
    make_small_tree(src, SMALL_FILES)
    log(f'generated {SMALL_FILES} files in {time.monotonic() - t0:.1f} s')
    sampler = Sampler(m.pid)
    sampler.start()
    t0 = time.monotonic()
    # --inplace: no temporary name and rename per file, which would only add
    # metadata requests (about a third of the time here) and exercise no
    # other memory or descriptor path.
    r = subprocess.run(['rsync', '-a', '--inplace', src + '/', m.path('small') + '/'],
                       capture_output=True, text=True, timeout=1800)
    t_rsync = time.monotonic() - t0
    assert r.returncode == 0, f'rsync exited {r.returncode}: {r.stderr[-2000:]}'
    sampler.finish(f'rsync of {SMALL_FILES} files')
    log(f'rsync of {SMALL_FILES} files: {t_rsync:.1f} s ({SMALL_FILES / t_rsync:.0f} files/s)')
    # Everything arrived: the count, and a sample of contents.
    n = sum(len(files) for _, _, files in os.walk(m.path('small')))
    assert n == SMALL_FILES, f'{n} files in the mount, expected {SMALL_FILES}'
    rng = random.Random(1)
    for i in rng.sample(range(SMALL_FILES), min(300, SMALL_FILES)):
        rel = os.path.join(f'd{i // 500:03d}', f'f{i}')
        with open(os.path.join(src, rel), 'rb') as a, open(m.path('small', rel), 'rb') as b:
            assert a.read() == b.read(), rel


if __name__ == '__main__':
    run_fs_tests(globals())
