"""Hostile nodes and wrong keys against a real shardfs mount (issue 5).

Lying nodes: a node is made to serve altered ciphertext as if it were its
own: the payload of its shard files is changed and the node's own checks are
fixed up to match (the shard file's payload CRC and header CRC, the
catalog's crc32c and sha256), so only the client's locator can tell. Every
stripe has one shard on every node (6 nodes, k = 4, m = 2), so making a node
lie damages one shard of every stripe.

  * m lying nodes: reads through the mount return the right bytes, and both
    nodes are listed as suspects by `shardctl status`;
  * m + 1 lying nodes: reading fails with EIO and the mount logs why; never
    wrong bytes.

Keys: a passphrase-protected key mounts with the right passphrase; a wrong
passphrase, or a wrong key file, refuses the mount with a clear message and
nothing is mounted.

Run: python3 tests/fs/test_tamper.py [test_name ...]
"""

import errno
import hashlib
import os
import sqlite3
import struct
import subprocess

from fsmount import log, read_uncached, run_fs_tests, write  # first: sets sys.path

HEADER = 64          # netnode/STORAGE.md §3.1
OFF_META_SIZE = 32
OFF_PAYLOAD_SIZE = 40
OFF_PAYLOAD_CRC = 48
OFF_HEADER_CRC = 60
PASSPHRASE = 'correct horse battery staple'


def crc32c(data):
    table = crc32c.table
    if table is None:
        table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
            table.append(c)
        crc32c.table = table
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


crc32c.table = None


def drive(c, m, *args, check=True):
    return c.shardctl('--state', m.state, *args, check=check)


def make_node_lie(node_dir):
    """Alters one byte in the payload of every shard file of the node and
    fixes the node's own checksums, so it serves the altered bytes."""
    db = sqlite3.connect(os.path.join(node_dir, 'node.db'), timeout=30)
    n = 0
    try:
        for root, _dirs, files in os.walk(os.path.join(node_dir, 'shards')):
            for name in files:
                if name.endswith('.tmp'):
                    continue
                path = os.path.join(root, name)
                with open(path, 'rb') as f:
                    data = bytearray(f.read())
                meta = struct.unpack_from('<I', data, OFF_META_SIZE)[0]
                size = struct.unpack_from('<Q', data, OFF_PAYLOAD_SIZE)[0]
                start = HEADER + meta
                assert len(data) == start + size, path
                data[start + size // 2] ^= 0x5A
                payload = bytes(data[start:])
                struct.pack_into('<I', data, OFF_PAYLOAD_CRC, crc32c(payload))
                struct.pack_into('<I', data, OFF_HEADER_CRC, crc32c(bytes(data[:OFF_HEADER_CRC])))
                # In place: the node may hold it open, and a new inode
                # would be a different experiment.
                with open(path, 'r+b') as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                stripe_hex, idx = name.split('.')
                db.execute('UPDATE shards SET crc32c = ?, sha256 = ? WHERE stripe = ? AND idx = ?',
                           (crc32c(payload), hashlib.sha256(payload).digest(),
                            bytes.fromhex(stripe_hex), int(idx)))
                n += 1
        db.commit()
    finally:
        db.close()
    return n


def shard_names(c, node_dir):
    """(stripe hex, index) of every shard file the node holds."""
    prefix = os.path.join(node_dir, '')
    return {(stripe_hex, int(idx))
            for stripe_hex, idx in (os.path.basename(p).split('.')
                                    for p in c.shard_files() if p.startswith(prefix))}


def holds_data_shard(c, node_dir, stripes, k):
    """True when the node holds a data shard (index < k) of one of `stripes`.
    The reader asks for the data shards first and stops once it has k good
    ones, so a node holding only parity of a file may never be asked: it
    could lie unnoticed, and the test would be luck (CI once caught one of
    two liars holding parity of all three stripes, ~1 run in 14)."""
    return any(s in stripes and i < k for s, i in shard_names(c, node_dir))


def node_id(node_dir):
    """The node's id as `shardctl status` prints it (from its PING)."""
    # The status table lists NODE ENDPOINT ...; match by endpoint.
    with open(os.path.join(node_dir, 'endpoint')) as f:
        return f.read().strip()


def status_suspects(c):
    r = c.shardctl('status', check=False, timeout=120)
    lines = r.stdout.splitlines()
    ids = {}
    for l in lines:
        parts = l.split()
        if len(parts) >= 2 and parts[1].startswith('tcp://'):
            ids[parts[1]] = parts[0]
    suspects = set()
    in_list = False
    for l in lines:
        if l.startswith('suspect nodes ('):
            in_list = True
            continue
        if in_list and l.startswith('  '):
            suspects.add(l.split()[0])
        else:
            in_list = False
    return ids, suspects, r.stdout


def write_and_upload(c, m, name, size):
    data = os.urandom(size)
    write(m.path(name), data)
    drive(c, m, 'sync', '--timeout', '120')
    drive(c, m, 'cache', 'drop')
    return data


def mount_logged(m):
    """Mounts with --log-file m.log, so the daemon's log can be read."""
    from fsmount import _mounts
    _mounts.append(m)
    r = mount_result(m, {})
    assert r.returncode == 0, r.stderr
    assert os.path.ismount(m.dir)
    m.pid = m.lease_pid()


def test_lying_nodes(c, m):
    mount_logged(m)
    seg = c.segment_size()
    dirs = c.node_dirs(c.dir)
    before = {s for s, _ in shard_names(c, c.dir)}  # the lease's
    data = write_and_upload(c, m, 'f', 2 * seg + 12345)  # three stripes
    stripes = {s for s, _ in shard_names(c, c.dir)} - before

    # m liars: every stripe loses m shards to them, and still reads. Each
    # liar holds a data shard somewhere, so the read must meet its lie.
    liars = [d for d in dirs if holds_data_shard(c, d, stripes, c.k)][:c.m]
    assert len(liars) == c.m, 'fewer than m nodes hold a data shard'
    for d in liars:
        assert make_node_lie(d) > 0, d
    got = read_uncached(m.path('f'))
    assert got == data, 'wrong bytes with m lying nodes'
    ids, suspects, out = status_suspects(c)
    want = {ids[node_id(d)] for d in liars}
    assert want <= suspects, f'suspects {suspects}, expected {want}\n{out}'
    honest = {ids[node_id(d)] for d in dirs if d not in liars}
    assert not (honest & suspects), f'honest nodes listed as suspects: {honest & suspects}'
    parity_only = [os.path.basename(d) for d in dirs if not holds_data_shard(c, d, stripes, c.k)]
    log(f'm = {c.m} lying nodes ({", ".join(os.path.basename(d) for d in liars)}): read ok, '
        f'suspects {sorted(suspects)}; {len(stripes)} stripes; '
        f'nodes holding only parity of them: {parity_only or "none"}')

    # m + 1 liars: EIO, never wrong bytes, and the mount says why.
    drive(c, m, 'cache', 'drop')
    assert make_node_lie(next(d for d in dirs if d not in liars)) > 0
    try:
        got = read_uncached(m.path('f'))
    except OSError as e:
        assert e.errno == errno.EIO, f'errno {e.errno}, expected EIO'
    else:
        raise AssertionError(f'read returned {len(got)} bytes with m + 1 lying nodes '
                             f'(same as written: {got == data})')
    with open(m.log, errors='replace') as f:
        text = f.read()
    assert 'CRC32C mismatch' in text or 'altered shard' in text, \
        f'no log line about the altered shards in {m.log}:\n{text[-3000:]}'
    log('m + 1 lying nodes: EIO and a log line')


test_lying_nodes.mounted = False


def mount_result(m, env_extra):
    env = dict(os.environ)
    env.pop('SHARDFS_PASSPHRASE', None)
    env.pop('SHARDFS_PASSPHRASE_FILE', None)
    env.update(env_extra)
    return subprocess.run(m.args() + ['--log-file', m.log], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, env=env,
                          start_new_session=True)  # no controlling tty to prompt on


def key_file(c):
    return os.path.join(c.dir, 'volume.key')


def test_passphrase(c, m):
    # Files written with the plain key must read with the protected one.
    mount_logged(m)
    data = write_and_upload(c, m, 'p', 100000)
    m.umount()

    pfile = c.path('pass')
    write(pfile, (PASSPHRASE + '\n').encode())
    c.shardctl('key', 'protect', '--new-passphrase-file', pfile, '--scrypt-log2-n', '15')
    with open(key_file(c)) as f:
        assert f.read().startswith('shardfs-key-v2 scrypt 15 8 1 ')
    assert os.stat(key_file(c)).st_mode & 0o777 == 0o600

    # Wrong passphrase: a clear message, nothing mounted.
    r = mount_result(m, {'SHARDFS_PASSPHRASE': 'not it'})
    assert r.returncode != 0, 'mounted with a wrong passphrase'
    assert 'wrong passphrase' in r.stderr, r.stderr
    assert not os.path.ismount(m.dir)
    # No passphrase at all and no terminal: says how to give one.
    r = mount_result(m, {})
    assert r.returncode != 0 and 'SHARDFS_PASSPHRASE' in r.stderr, r.stderr
    assert not os.path.ismount(m.dir)
    log(f'wrong passphrase refused: {r.stderr.strip()}')

    # The right one, from a file: mounts and reads the old data.
    r = mount_result(m, {'SHARDFS_PASSPHRASE_FILE': pfile})
    assert r.returncode == 0, r.stderr
    m.pid = m.lease_pid()
    assert read_uncached(m.path('p')) == data
    m.umount()

    # change-passphrase then unprotect keep the same key.
    newp = c.path('newpass')
    write(newp, b'another one\n')
    c.shardctl('key', 'change-passphrase', '--passphrase-file', pfile,
               '--new-passphrase-file', newp, '--scrypt-log2-n', '14')
    r = c.shardctl('key', 'unprotect', '--passphrase-file', pfile, check=False)
    assert r.returncode != 0 and 'wrong passphrase' in r.stderr, r.stderr
    c.shardctl('key', 'unprotect', '--passphrase-file', newp)
    with open(key_file(c)) as f:
        assert f.read().startswith('shardfs-key-v1 ')
    r = mount_result(m, {})
    assert r.returncode == 0, r.stderr
    m.pid = m.lease_pid()
    assert read_uncached(m.path('p')) == data


test_passphrase.mounted = False


def test_wrong_key_file(c, m):
    mount_logged(m)
    write_and_upload(c, m, 'k', 1000)
    m.umount()

    # Another key, well formed and mode 0600: the state dir belongs to the
    # real key's volume.
    with open(key_file(c), 'w') as f:
        f.write('shardfs-key-v1 ' + os.urandom(32).hex() + '\n')
    r = mount_result(m, {})
    assert r.returncode != 0, 'mounted with a wrong key file'
    assert not os.path.ismount(m.dir)
    log(f'wrong key refused: {r.stderr.strip()}')
    # A key file that others can read is refused before anything else.
    os.chmod(key_file(c), 0o644)
    r = mount_result(m, {})
    assert r.returncode != 0 and 'chmod 600' in r.stderr, r.stderr
    assert not os.path.ismount(m.dir)


test_wrong_key_file.mounted = False


if __name__ == '__main__':
    run_fs_tests(globals())
