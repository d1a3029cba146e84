"""Sharing the machine's cores among mnistlab processes, so that two trainings side by side each run
at about half speed instead of a quarter.

Why: OpenBLAS threads spin while they wait for work. Two processes each running two threads on two
cores take turns at every product, and each waits for cores the other holds: two default trainings
started together ran their epochs 4.3x slower than one alone, where sharing the cores fairly gives
2x. So every mnistlab process that trains registers itself in a folder of lock files (one file per
process, held with ``flock`` while it trains; the kernel drops the lock when the process dies, however
it dies) and runs as many BLAS threads as its share of the cores: the cores divided among the
registered processes, less the cores other programs keep busy (measured from ``/proc/stat`` over the
last epoch, net of this process and the registered ones).

``CoreShare(threads)`` is a context manager: entering it registers this process and sets the BLAS
threads; ``update()``, called once per epoch, looks again and changes the thread count only if the
share changed. Never per product: switching the count per call made every large product slower (see
blas.py). Alone on a quiet machine the share is every core, as before.

``MNISTLAB_CORES_DIR`` names the folder (default: ``<tmp>/mnistlab-cores-<uid>``);
``MNISTLAB_SHARE_CORES=0`` turns sharing off (a plain thread limit, as before).
"""

import os
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

try:
    import fcntl
except ImportError:  # not on Windows: no sharing there, a plain thread limit
    fcntl = None

_SUFFIX = ".lock"
# A foreign load counts as a whole core from this many cores on: below it, a core is mostly free.
_BUSY_CORE = 0.5
# Before the first epoch the load is sampled this long: enough at 100 jiffies a second to see a busy
# core, and it spares a first epoch of threads spinning against another program (seen: 2x slower).
FIRST_SAMPLE_S = 0.1


def cores_dir():
    default = Path(tempfile.gettempdir()) / f"mnistlab-cores-{os.getuid() if hasattr(os, 'getuid') else 0}"
    return Path(os.environ.get("MNISTLAB_CORES_DIR") or default)


def sharing_enabled():
    return fcntl is not None and os.environ.get("MNISTLAB_SHARE_CORES", "1") != "0"


def divide(cores, limits):
    """Cores for each process, in order, each at most its limit and at least 1: one core at a time
    round the processes (so 3 cores among 2 processes give 2 and 1, the first registered first)."""
    shares = [0] * len(limits)
    left = cores
    while left > 0 and any(s < m for s, m in zip(shares, limits)):
        for i, limit in enumerate(limits):
            if left > 0 and shares[i] < limit:
                shares[i] += 1
                left -= 1
    return [max(1, s) for s in shares]


def busy_jiffies():
    """Jiffies the machine has spent running anything (steal excluded: not a process of ours to avoid)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    return user + nice + system + irq + softirq


def process_jiffies(pid):
    """CPU jiffies (user + system, every thread) of a process, or None if it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


class CoreShare:
    """This process's share of the cores for BLAS threads; see the module docstring."""

    def __init__(self, threads=None, directory=None, measure_load=True):
        self.cores = os.cpu_count() or 1
        self.measure_load = measure_load  # False: divide the cores among mnistlab processes only
        self.limit = max(1, threads or self.cores)  # the most threads this process wants
        self.directory = Path(directory) if directory else cores_dir()
        self.threads = None  # the BLAS threads in use
        self.foreign = 0.0  # cores other programs kept busy over the last interval
        self._file = self._name = self._limits = self._snapshot = None

    # Registration ------------------------------------------------------------------------------

    def _register(self):
        """Create and lock this process's file. It gets its final name only once locked, so a file
        with a final name that is not locked belongs to a process that has died."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{id(self):x}-{self.limit}{_SUFFIX}"
        fd, temporary = tempfile.mkstemp(prefix=".new-", dir=self.directory)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(temporary, self.directory / name)
        self._file, self._name = fd, name

    def _unregister(self):
        if self._file is not None:
            try:
                (self.directory / self._name).unlink(missing_ok=True)
            finally:
                os.close(self._file)  # releases the lock
                self._file = None

    def members(self):
        """[(name, pid, limit)] of the live registered processes, oldest first (this one included);
        files left by dead processes are removed on the way."""
        found = []
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(_SUFFIX))
        except OSError:
            names = []
        for name in names:
            try:
                _, pid, _, limit = name[: -len(_SUFFIX)].split("-")
                pid, limit = int(pid), int(limit)
            except ValueError:
                continue
            if name != self._name and not self._held(name):
                continue
            found.append((name, pid, limit))
        return found

    def _held(self, name):
        """True if some process holds the file's lock; a stale file is removed."""
        path = self.directory / name
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True  # locked: its process is alive
        else:
            path.unlink(missing_ok=True)  # we hold its lock, so no one else can be using it
            return False
        finally:
            os.close(fd)

    # The share ---------------------------------------------------------------------------------

    def share(self):
        """The threads this process should run now (also measures the foreign load)."""
        members = self.members()
        pids = {pid for _, pid, _ in members}
        self.foreign = self._foreign_load(pids) if self.measure_load else 0.0
        free = max(1, self.cores - int(self.foreign + 1 - _BUSY_CORE))
        names = [name for name, _, _ in members]
        shares = divide(free, [limit for _, _, limit in members])
        return min(self.limit, shares[names.index(self._name)] if self._name in names else 1)

    def _foreign_load(self, pids):
        """Cores kept busy since the last call by processes neither this one nor registered."""
        try:
            now = (time.monotonic(), busy_jiffies(), {pid: process_jiffies(pid) for pid in pids})
        except (OSError, ValueError):
            return 0.0
        before, self._snapshot = self._snapshot, now
        if before is None:
            return 0.0  # nothing measured yet: the registered processes are all we know
        (t0, busy0, ours0), (t1, busy1, ours1) = before, now
        hz = os.sysconf("SC_CLK_TCK")
        elapsed = (t1 - t0) * hz
        if elapsed <= 0:
            return self.foreign
        ours = 0
        for pid, jiffies in ours1.items():
            if jiffies is not None:  # a process seen for the first time: all its time may be recent
                ours += min(jiffies - (ours0.get(pid) or 0), elapsed * self.cores)
        return max(0.0, (busy1 - busy0 - ours) / elapsed)

    # The context -------------------------------------------------------------------------------

    def _apply(self, threads):
        if threads != self.threads:
            limits = threadpool_limits(limits=threads, user_api="blas")
            if self._limits is None:
                self._limits = limits  # the first one remembers the limits to put back
            self.threads = threads

    def update(self):
        """Look at the other processes and the load again (once per epoch); returns the threads."""
        if self._file is not None:
            self._apply(self.share())
        return self.threads

    def __enter__(self):
        if sharing_enabled():  # a one-thread process registers too: the others leave it its core
            try:
                self._register()
            except OSError:  # an unwritable temp folder: train as before rather than not at all
                self._file = None
        if self._file is not None and self.limit > 1 and self.measure_load:
            self._foreign_load({pid for _, pid, _ in self.members()})  # the sample's start
            time.sleep(FIRST_SAMPLE_S)
        self._apply(self.share() if self._file is not None else self.limit)
        return self

    def __exit__(self, *exc):
        try:
            self._unregister()
        finally:
            if self._limits is not None:
                self._limits.restore_original_limits()
            self._limits, self.threads = None, None
