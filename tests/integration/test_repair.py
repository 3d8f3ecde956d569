#!/usr/bin/env python3
"""Issue 4: membership, repair, scrub, orphan collection, graceful exit.

8 real nodes, k = 4, m = 2, 4 zones, short timings (heartbeat 250 ms,
down after a few seconds, audits every second, repair bandwidth unlimited
unless a test limits it). Data goes in through `shardctl put`; health is
read back with `shardctl status --json`.

- kill one node: within the grace period plus a bound every stripe is back
  to n healthy shards, none on the dead node, zones spread; then kill two
  more: every object reads back byte-exact (without repair some could not);
- corrupt shard files: the scrubber finds them and they are rebuilt in place;
- kill the node that is repairing, mid-repair: repair still converges;
- restart a node after its shards were rebuilt elsewhere: its stale copies
  are collected as orphans and nothing is counted twice;
- SIGSTOP shorter than the grace period: no repair; longer: repair, and
  after SIGCONT the stopped node's stale copies are collected;
- graceful exit (`shardfs-node exit`): the node hands its shards off and
  the cluster is healthy at once, without waiting for the grace period;
- a client whose config names one endpoint learns every node from it;
- holders take turns auditing a healthy stripe: about one audit per stripe
  per interval across the cluster, not one per holder.
"""

import json
import os
import signal
import subprocess
import time

from cluster import (NODE, Cluster, _started, assert_same, cluster_args, get_and_compare, log,
                     node_alive, run_tests)

DOWN_AFTER = 3
FAST = ['--down-after', str(DOWN_AFTER),
        '--node-arg=--heartbeat-ms=250', '--node-arg=--audit-interval=1',
        '--node-arg=--repair-bandwidth=0', '--node-arg=--scrub-rate=0']
# Time from a node's death to full redundancy, beyond the grace period.
REPAIR_BOUND_S = 60
MIB = 1 << 20


def start(c, extra=()):
    """Starts the cluster with FAST, minus what `extra` overrides."""
    extra = list(extra)
    overridden = {a.rsplit('=', 1)[0] for a in extra if a.startswith('--node-arg=')} | \
        {a for a in extra if a.startswith('--') and not a.startswith('--node-arg=')}
    args, skip = [], False
    for a in FAST:
        if skip:
            skip = False
            continue
        if a.startswith('--node-arg=') and a.rsplit('=', 1)[0] in overridden:
            continue
        if not a.startswith('--node-arg=') and a in overridden:
            skip = True
            continue
        args.append(a)
    c.start(extra=args + extra)


def status(c, config=None):
    r = c.shardctl('status', '--json', config=config or c.config, check=False, timeout=60)
    if r.returncode not in (0, 1, 2):
        raise AssertionError(f'status exited {r.returncode}: {r.stderr}')
    s = json.loads(r.stdout)
    s['code'] = r.returncode
    return s


def wait_for(what, pred, timeout):
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        last = pred()
        if last:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise AssertionError(f'timed out after {timeout} s waiting for {what} (last: {last})')


def node_id(c, i):
    s = status(c)
    ep = c.endpoint(i)
    for n in s['nodes']:
        if n['endpoint'] == ep:
            return n['id']
    raise AssertionError(f'node-{i} ({ep}) not in status')


def fully_redundant(c, dead_ids=()):
    """Healthy verdict, every stripe complete and on none of `dead_ids`."""
    s = status(c)
    if s['code'] != 0 or s['summary']['degraded'] or s['summary']['at_risk']:
        return False
    for st in s['stripes']:
        if st['healthy'] != st['k'] + st['m']:
            return False
        if any(h[1] in dead_ids for h in st['holders']):
            return False
    return s


def put_set(c, total, count):
    """`count` objects of varied sizes adding up to about `total` bytes."""
    objs = []
    base = total // count
    for j in range(count):
        size = max(1, base + (j % 5 - 2) * (base // 7) + j)
        src = c.random_file(f'obj-{j}', size)
        objs.append((src, c.put(src)))
    return objs



def cmdline(c, i):
    with open(f'/proc/{c.pid(i)}/cmdline', 'rb') as f:
        return [a.decode() for a in f.read().split(b'\0') if a]


def restart(c, i, args):
    """Starts node i again with its old command line (same data dir, port)."""
    args = list(args)
    log_path = os.path.join(c.node_dir(i), 'log')
    # Same port as before, so the client config still names it.
    for j, a in enumerate(args):
        if a == '--listen':
            args[j + 1] = c.old_endpoints[i]
    with open(log_path, 'ab') as log_f:
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log_f, stderr=log_f,
                             start_new_session=True)
    _started.add((p.pid, c.node_dir(i)))
    c.children.append(p)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if c.read_pid(c.node_dir(i)) == p.pid and os.path.exists(
                os.path.join(c.node_dir(i), 'endpoint')):
            return p
        time.sleep(0.1)
    raise AssertionError(f'node-{i} did not restart')


def remember(c):
    c.old_endpoints = {i: c.endpoint(i) for i in range(1, c.nodes + 1)}
    c.children = []


def corrupt_file(path):
    """Flips the last byte (payload) of a shard file; returns the new bytes."""
    with open(path, 'r+b') as f:
        f.seek(-1, os.SEEK_END)
        b = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([b[0] ^ 0x5A]))
    with open(path, 'rb') as f:
        return f.read()


# --- tests ---------------------------------------------------------------

@cluster_args(nodes=8, zones=4)
def test_kill_one_then_two_more(c: Cluster):
    start(c)
    objs = put_set(c, 64 * MIB, 16)
    wait_for('a healthy cluster', lambda: fully_redundant(c), 30)
    ids = {i: node_id(c, i) for i in (3, 5, 7)}

    # A client that knows one endpoint learns the rest from it.
    one = c.write_config(c.path('one.conf'), [c.endpoint(1)])
    s1 = status(c, config=one)
    assert len([n for n in s1['nodes'] if n['state'] == 'up']) == 8, s1['nodes']

    c.kill(3)
    t0 = time.monotonic()
    wait_for('full redundancy without node-3', lambda: fully_redundant(c, {ids[3]}),
             DOWN_AFTER + REPAIR_BOUND_S)
    dt = time.monotonic() - t0
    s = status(c)
    repaired = sum(n['repaired_shards'] for n in s['nodes'])
    log(f'node-3 killed: full redundancy after {dt:.1f} s (grace {DOWN_AFTER} s), '
        f'{repaired} shards rebuilt')
    assert repaired > 0
    assert s['summary']['zone_conflicts'] == 0, s['summary']
    assert [n['state'] for n in s['nodes'] if n['id'] == ids[3]] == ['down']

    c.kill(5)
    c.kill(7)
    get_and_compare(c, objs, 'after3')
    # The single-endpoint config reads too (node-1 is alive).
    src, oid = objs[0]
    c.shardctl('get', oid, c.path('one.out'), config=one)
    assert_same(src, c.path('one.out'))


@cluster_args(nodes=8, zones=4)
def test_scrub_repairs_corruption(c: Cluster):
    start(c, ['--node-arg=--scrub-rate=256M', '--node-arg=--scrub-interval=1'])
    objs = put_set(c, 32 * MIB, 8)
    files = c.shard_files()
    # One shard file on each of five nodes, each of another stripe.
    victims, nodes, stripes = [], set(), set()
    for f in files:
        node = f.split('/node-')[1].split('/')[0]
        stripe = os.path.basename(f).split('.')[0]
        if node not in nodes and stripe not in stripes:
            nodes.add(node)
            stripes.add(stripe)
            victims.append(f)
        if len(victims) == 5:
            break
    bad = {f: corrupt_file(f) for f in victims}

    def healed():
        s = status(c)
        found = sum(n['corrupt_found'] for n in s['nodes'])
        if found < len(bad):
            return False
        for f, content in bad.items():
            with open(f, 'rb') as fh:
                if fh.read() == content:
                    return False
        return fully_redundant(c)
    dt = wait_for('the scrubber to find and heal the corrupt shards', healed, 60)
    log(f'{len(bad)} corrupt shards found and rebuilt in {dt:.1f} s')
    get_and_compare(c, objs, 'healed')


@cluster_args(nodes=8, zones=4)
def test_kill_repairing_node(c: Cluster):
    # Slow repair (1 MiB/s per node) so there is time to catch one at it.
    start(c, ['--node-arg=--repair-bandwidth=1M'])
    objs = put_set(c, 32 * MIB, 8)
    wait_for('a healthy cluster', lambda: fully_redundant(c), 30)
    dead = {node_id(c, 2)}
    c.kill(2)
    endpoints = {c.endpoint(i): i for i in range(1, 9) if i != 2}

    # Kill the repairer the very status call that saw it at work: asking
    # again would race its repair (a few seconds long) to the finish.
    seen = []

    def repairing():
        for n in status(c)['nodes']:
            if n['state'] == 'up' and n['repair_active'] > 0 and n['endpoint'] in endpoints:
                seen.append((endpoints[n['endpoint']], n['id'], n['repair_active']))
                return True
        return False
    wait_for('a repair in progress', repairing, DOWN_AFTER + 30)
    victim, vid, active = seen[-1]
    log(f'killing node-{victim} while it repairs ({active} stripe(s) in progress)')
    c.kill(victim)
    dead.add(vid)
    dt = wait_for('convergence after the repairer died', lambda: fully_redundant(c, dead),
                  DOWN_AFTER + 120)
    log(f'converged {dt:.1f} s after the repairing node was killed')
    get_and_compare(c, objs, 'converged')


@cluster_args(nodes=8, zones=4)
def test_restart_after_repair(c: Cluster):
    start(c)
    objs = put_set(c, 32 * MIB, 8)
    wait_for('a healthy cluster', lambda: fully_redundant(c), 30)
    remember(c)
    args = cmdline(c, 4)
    nid = node_id(c, 4)
    c.kill(4)
    wait_for('full redundancy without node-4', lambda: fully_redundant(c, {nid}),
             DOWN_AFTER + REPAIR_BOUND_S)
    stale = len([f for f in c.shard_files() if '/node-4/' in f])
    assert stale > 0
    restart(c, 4, args)

    def collected():
        s = status(c)
        n4 = [n for n in s['nodes'] if n['id'] == nid]
        if not n4 or n4[0]['state'] != 'up' or n4[0]['shards'] != 0:
            return False
        return s['summary']['orphans'] == 0 and fully_redundant(c)
    dt = wait_for('node-4 back, its stale shards collected', collected, 60)
    s = status(c)
    log(f'node-4 restarted: {stale} orphans collected in {dt:.1f} s')
    for st in s['stripes']:
        assert st['healthy'] == st['k'] + st['m'], st
        assert len(st['holders']) == st['k'] + st['m'], st
    get_and_compare(c, objs, 'restarted')


@cluster_args(nodes=8, zones=4)
def test_sigstop_short_and_long(c: Cluster):
    start(c)
    objs = put_set(c, 32 * MIB, 8)
    wait_for('a healthy cluster', lambda: fully_redundant(c), 30)
    nid = node_id(c, 6)

    # Shorter than the grace period: suspect at most, no repair.
    c.signal(6, signal.SIGSTOP)
    time.sleep(DOWN_AFTER * 0.5)
    c.signal(6, signal.SIGCONT)
    time.sleep(3)
    s = status(c)
    assert sum(n['repaired_shards'] for n in s['nodes']) == 0, 'repair after a short stop'
    assert s['code'] == 0

    # Longer: repair, then the returning node's copies become orphans.
    c.signal(6, signal.SIGSTOP)
    try:
        wait_for('repair around the stopped node', lambda: fully_redundant(c, {nid}),
                 DOWN_AFTER + REPAIR_BOUND_S)
    finally:
        c.signal(6, signal.SIGCONT)

    def converged():
        s = status(c)
        n6 = [n for n in s['nodes'] if n['id'] == nid]
        return (n6 and n6[0]['state'] == 'up' and n6[0]['shards'] == 0 and
                s['summary']['orphans'] == 0 and fully_redundant(c))
    dt = wait_for('convergence after SIGCONT', converged, 60)
    log(f'node-6 resumed: converged in {dt:.1f} s')
    get_and_compare(c, objs, 'resumed')


@cluster_args(nodes=8, zones=4)
def test_graceful_exit(c: Cluster):
    # A long grace period: only the hand-off can make this quick.
    start(c, ['--down-after', '600'])
    objs = put_set(c, 24 * MIB, 6)
    wait_for('a healthy cluster', lambda: fully_redundant(c), 30)
    nid = node_id(c, 8)
    held = len([f for f in c.shard_files() if '/node-8/' in f])
    r = subprocess.run([NODE, 'exit', '--data-dir', c.node_dir(8), '--timeout', '120'],
                       capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stderr
    assert not c.alive(8)
    dt = wait_for('full redundancy after the hand-off', lambda: fully_redundant(c, {nid}), 20)
    log(f'node-8 handed off {held} shards; healthy {dt:.1f} s after it exited')
    assert [f for f in c.shard_files() if '/node-8/' in f] == []
    get_and_compare(c, objs, 'handed-off')


@cluster_args(nodes=8, zones=4)
def test_audits_take_turns(c: Cluster):
    start(c)
    put_set(c, 16 * MIB, 8)
    wait_for('a healthy cluster', lambda: fully_redundant(c), 30)
    time.sleep(2)  # the passes the uploads' new peers and stripes started
    s0 = status(c)
    t0 = time.monotonic()
    time.sleep(10)
    s1 = status(c)
    window = time.monotonic() - t0
    stripes = len(s1['stripes'])
    n = s1['stripes'][0]['k'] + s1['stripes'][0]['m']
    audits = sum(x['audits'] for x in s1['nodes']) - sum(x['audits'] for x in s0['nodes'])
    # Audit interval 1 s: every holder auditing every stripe each pass makes
    # n per stripe and second; taking turns makes one (a pass a peer's state
    # change starts still audits everything, hence the margin).
    rate = audits / (stripes * window)
    log(f'{audits} audits of {stripes} stripes in {window:.1f} s: {rate:.2f} per stripe and '
        f'interval ({n} holders each)')
    assert s1['code'] == 0
    assert 0.3 < rate < n / 2, rate


if __name__ == '__main__':
    run_tests(globals(), start=False)
