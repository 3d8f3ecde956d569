#!/usr/bin/env python3
"""Repair benchmark (issue 4, "Measure"): time from a node's death to full
redundancy, and repair throughput, for a given amount of data stored.

    bench_repair.py [--mib 200] [--bandwidth 0] [--nodes 8] [--down-after 3]

Starts a local cluster (k = 4, m = 2, 4 zones), stores --mib MiB through
`shardctl put` (4 MiB objects), kills one node with SIGKILL and polls
`shardctl status --json` until every stripe is back to n healthy shards
on live nodes. Prints: the data the dead node held, the time from death to
full redundancy, that time minus the grace period (the repair itself), and
the rebuilt bytes per second of repair. --bandwidth is each node's
--repair-bandwidth (0: unlimited). Not part of the test suite.
"""

import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_repair as t  # noqa: E402
from cluster import Cluster  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--mib', type=int, default=200)
    ap.add_argument('--bandwidth', default='0')
    ap.add_argument('--nodes', type=int, default=8)
    ap.add_argument('--down-after', type=float, default=3)
    a = ap.parse_args()
    c = Cluster('bench-repair', nodes=a.nodes, zones=4)
    try:
        t.start(c, ['--down-after', str(a.down_after),
                    f'--node-arg=--repair-bandwidth={a.bandwidth}'])
        t0 = time.monotonic()
        count = max(1, a.mib // 4)
        t.put_set(c, a.mib * t.MIB, count)
        print(f'stored {a.mib} MiB in {count} objects in {time.monotonic() - t0:.1f} s',
              flush=True)
        t.wait_for('healthy', lambda: t.fully_redundant(c), 60)
        victim = 3
        vid = t.node_id(c, victim)
        held = sum(os.path.getsize(f) for f in c.shard_files() if f'/node-{victim}/' in f)
        c.kill(victim)
        t_kill = time.monotonic()
        t.wait_for('full redundancy', lambda: t.fully_redundant(c, {vid}), 3600)
        dt = time.monotonic() - t_kill
        s = t.status(c)
        rebuilt = sum(n['repaired_bytes'] for n in s['nodes'])
        repair_s = max(dt - a.down_after, 1e-3)
        print(f'dead node held {held / t.MIB:.1f} MiB of shards')
        print(f'death -> full redundancy: {dt:.1f} s (grace {a.down_after:g} s, '
              f'repair {repair_s:.1f} s)')
        print(f'rebuilt {rebuilt / t.MIB:.1f} MiB: {rebuilt / 1e6 / repair_s:.1f} MB/s '
              f'(bandwidth per node: {a.bandwidth})')
    finally:
        c.stop()
        shutil.rmtree(c.tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
