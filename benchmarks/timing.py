"""Timing helpers shared by the benchmark scripts: clocks, paired ratios, other load, machine facts.

A benchmark times its cases with ``timed`` (or ``alternate``, which runs two or more contenders in
turn so that each pair shares the machine's state), reports ``paired_ratio`` of back-to-back pairs,
and ``other_cores`` (cores kept busy by other processes between two ``cpu_snapshot()``s) so a reader
can tell a quiet run from a busy one. ``machine_info`` and ``matmul_peak_gflops`` describe the machine.
"""

import os
import platform
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

# Idle worker threads busy-wait for a while after their last job (OpenBLAS's for up to ~0.1 s),
# stealing a core from whichever contender runs next: pause before every timed run.
PAUSE_S = 0.5

def machine_info(threads, **extra):
    """CPU model, cores, the thread cap, Python and NumPy versions, plus ``extra`` facts."""
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), platform.machine())
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "python": platform.python_version(),
            "numpy": np.__version__, **extra}

def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0

def matmul_peak_gflops(threads, n=4096, tries=3):
    a = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(2).standard_normal((n, n), dtype=np.float32)
    with threadpool_limits(threads, user_api="blas"):  # NumPy's matmul, on every allowed thread
        a @ b  # warm-up
        return 2 * n ** 3 / min(timed(lambda: a @ b) for _ in range(tries)) / 1e9

def paired_ratio(times_m, times_t):
    """The median of a/b over back-to-back pairs of runs (e.g. mnistlab/torch, after/before)."""
    return statistics.median(m / t for m, t in zip(times_m, times_t))

def cpu_snapshot():
    """(time, busy jiffies of the machine, of this process): the difference over time is other load."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    with open("/proc/self/stat") as f:
        utime, stime = map(int, f.read().rsplit(")", 1)[1].split()[11:13])
    return time.perf_counter(), user + nice + system + irq + softirq + steal, utime + stime

def other_cores(before, after):
    """Cores kept busy by other processes (or the hypervisor's steal) between two cpu_snapshot()s."""
    (w0, all0, me0), (w1, all1, me1) = before, after
    return max(0.0, ((all1 - all0) - (me1 - me0)) / os.sysconf("SC_CLK_TCK") / (w1 - w0))


def alternate(contenders, repeats, pause=PAUSE_S):
    """Run each of ``contenders`` (name -> function returning seconds) in turn, ``repeats`` times.

    Returns ({name: [seconds, ...]}, other cores busy meanwhile). Alternating, and pausing before each
    run, keeps a slow spell of a shared machine from falling on one contender only.
    """
    times = {name: [] for name in contenders}
    snap = cpu_snapshot()
    for _ in range(repeats):
        for name, fn in contenders.items():
            time.sleep(pause)
            times[name].append(fn())
    return times, other_cores(snap, cpu_snapshot())


def median(values):
    return statistics.median(values)
