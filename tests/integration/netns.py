"""A throw-away test network: one Linux network namespace per node on a bridge.

    root namespace:  bridge sfs<pid>br, address 10.213.X.1/24 (the client)
    namespace i:     sfs<pid>n<i>, lo up, eth0 = 10.213.X.(i+1)/24, the
                     other end of its veth pair (sfs<pid>h<i>) in the bridge

X is derived from our pid, so two runs at once use different subnets and
names. No namespace has a default route and the root namespace does not
forward (we never touch ip_forward), so traffic stays on the bridge.

Partition(i) detaches node i's veth from the bridge (`ip link set ... nomaster`):
its link stays up and its process keeps running, but nothing it sends
arrives anywhere and nothing reaches it: packets vanish, as when a home
router drops off, rather than being refused. Heal(i) attaches it again.

Teardown() deletes the namespaces, veths and bridge; it is idempotent and
also registered with atexit, and Setup() first removes leftovers of earlier
runs whose pid is gone (a SIGKILLed test cannot clean up after itself).
Processes running inside the namespaces must be killed by the caller
before Teardown (a namespace lives on while a process is in it).

Requires root, iproute2 and bridge/veth/netns support in the kernel;
available() says why not, so a test can skip loudly.

Thread-safety: none; use from the test's main thread.
"""

import atexit
import os
import re
import shutil
import socket
import subprocess
import time

IP = shutil.which('ip') or '/sbin/ip'
PORT = 7000  # every node has its own namespace, hence its own port space


def _ip(*args, check=True, ns=None):
    cmd = [IP] + (['-n', ns] if ns else []) + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} exited {r.returncode}: {r.stderr.strip()}')
    return r


def available():
    """None if we can build a test network here, else the reason why not."""
    if os.geteuid() != 0:
        return 'not root (ip netns needs CAP_NET_ADMIN and CAP_SYS_ADMIN)'
    if not os.access(IP, os.X_OK):
        return f'no iproute2 ({IP} not found)'
    try:
        r = _ip('netns', 'list', check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return f'ip netns: {e}'
    if r.returncode != 0:
        return f'ip netns list: {r.stderr.strip()}'
    return None


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def remove_leftovers():
    """Deletes sfs<pid>* namespaces and links of test runs whose pid is gone."""
    def dead(pid):
        return int(pid) != os.getpid() and not _pid_alive(int(pid))
    r = _ip('netns', 'list', check=False)
    for line in r.stdout.splitlines():
        m = re.match(r'(sfs(\d+)n\d+)\b', line.strip())
        if m and dead(m.group(2)):
            _ip('netns', 'delete', m.group(1), check=False)
    r = _ip('-o', 'link', 'show', check=False)
    # Veths first (deleting one end deletes its peer), then bridges.
    names = re.findall(r'^\d+:\s+(sfs(\d+)(?:br|h\d+))[@:]', r.stdout, re.M)
    for name, pid in sorted(names, key=lambda n: n[0].endswith('br')):
        if dead(pid):
            _ip('link', 'delete', name, check=False)


class TestNet:
    def __init__(self, nodes, pid=None):
        self.pid = pid or os.getpid()
        self.nodes = nodes
        # 10.213.X.0/24 with X in 16..239, from the pid.
        self.subnet = 16 + self.pid % 224
        self.bridge = f'sfs{self.pid}br'
        self.host_ip = f'10.213.{self.subnet}.1'
        self.created = False

    def ns(self, i):
        return f'sfs{self.pid}n{i}'

    def veth(self, i):
        return f'sfs{self.pid}h{i}'  # the bridge side; the namespace side is eth0

    def addr(self, i):
        return f'10.213.{self.subnet}.{i + 1}'

    def endpoint(self, i):
        return f'tcp://{self.addr(i)}:{PORT}'

    def exec_prefix(self, i):
        """Argv prefix that runs a program inside namespace i (it execs: same pid)."""
        return [IP, 'netns', 'exec', self.ns(i)]

    # --- life cycle ------------------------------------------------------

    def setup(self):
        remove_leftovers()
        atexit.register(self.teardown)
        self.created = True
        _ip('link', 'add', self.bridge, 'type', 'bridge')
        _ip('addr', 'add', f'{self.host_ip}/24', 'dev', self.bridge)
        _ip('link', 'set', self.bridge, 'up')
        for i in range(1, self.nodes + 1):
            ns, peer = self.ns(i), f'sfs{self.pid}p{i}'
            _ip('netns', 'add', ns)
            _ip('link', 'add', self.veth(i), 'type', 'veth', 'peer', 'name', peer)
            _ip('link', 'set', peer, 'netns', ns)
            _ip('link', 'set', self.veth(i), 'master', self.bridge)
            _ip('link', 'set', self.veth(i), 'up')
            _ip('link', 'set', 'lo', 'up', ns=ns)
            _ip('link', 'set', peer, 'name', 'eth0', ns=ns)
            _ip('addr', 'add', f'{self.addr(i)}/24', 'dev', 'eth0', ns=ns)
            _ip('link', 'set', 'eth0', 'up', ns=ns)
        self.wait_bridge()

    def wait_bridge(self, timeout=10):
        """Waits until every bridge port forwards (no STP here, but be sure)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = _ip('-o', 'link', 'show', 'master', self.bridge, check=False)
            if r.stdout.count('state UP') >= self.nodes:
                return
            time.sleep(0.1)
        raise RuntimeError(f'bridge {self.bridge} ports not up after {timeout} s')

    def teardown(self, quiet=False):
        """Deletes everything setup() may have created. Idempotent."""
        if not self.created:
            return
        errors = []
        for i in range(1, self.nodes + 1):
            for args in (('netns', 'delete', self.ns(i)), ('link', 'delete', self.veth(i))):
                r = _ip(*args, check=False)
                if r.returncode != 0 and 'No such' not in r.stderr and \
                        'Cannot find' not in r.stderr and 'does not exist' not in r.stderr:
                    errors.append(f'ip {" ".join(args)}: {r.stderr.strip()}')
        r = _ip('link', 'delete', self.bridge, check=False)
        if r.returncode != 0 and 'Cannot find' not in r.stderr and 'does not exist' not in r.stderr:
            errors.append(f'ip link delete {self.bridge}: {r.stderr.strip()}')
        self.created = False
        if errors and not quiet:
            print('netns teardown: ' + '; '.join(errors), flush=True)

    def leftovers(self):
        """Names of ours still present (for the test to assert a clean teardown)."""
        left = []
        r = _ip('netns', 'list', check=False)
        left += [l.split()[0] for l in r.stdout.splitlines()
                 if l.startswith(f'sfs{self.pid}n')]
        r = _ip('-o', 'link', 'show', check=False)
        left += [m.group(1) for m in re.finditer(rf'^\d+:\s+(sfs{self.pid}\w+)[@:]', r.stdout,
                                                 re.M)]
        return left

    # --- faults ----------------------------------------------------------

    def partition(self, i):
        """Cuts node i off: its veth leaves the bridge, packets vanish."""
        _ip('link', 'set', self.veth(i), 'nomaster')

    def heal(self, i):
        _ip('link', 'set', self.veth(i), 'master', self.bridge)
        _ip('link', 'set', self.veth(i), 'up')

    def reachable(self, i, port=PORT, timeout=1.0):
        """True if a TCP connect from the root namespace to node i succeeds."""
        try:
            with socket.create_connection((self.addr(i), port), timeout=timeout):
                return True
        except OSError:
            return False
