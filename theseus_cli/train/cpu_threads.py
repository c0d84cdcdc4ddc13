"""CPU threads of a run, and the other processes that compete with them for the cores.

PyTorch runs each CPU operator on one thread per core by default. Two trainings started
side by side on the same cores then oversubscribe them: on this project's 2-core machine
each ran several times slower than alone (``benchmarks/cpu_threads.py`` measures it). A
run's thread count is ``runtime.threads``; :func:`contention_warning` says when other
processes already keep the cores busy at the start of a run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

#: PyTorch's own thread count in this process, read before any runtime changed it
_DEFAULT_THREADS: int | None = None

#: the share of one core other processes must keep busy before a run warns (cores)
BUSY_THRESHOLD = 0.75

#: :func:`first_run_warning` measured already in this process
_MEASURED = False


def apply_threads(threads: int | None) -> int:
    """Set PyTorch's intra-op CPU threads of this process (``torch.set_num_threads``):
    ``threads``, or PyTorch's own default when None (the count it had before any runtime
    of this process changed it). Returns the count now in effect."""
    import torch

    global _DEFAULT_THREADS
    if _DEFAULT_THREADS is None:
        _DEFAULT_THREADS = torch.get_num_threads()
    wanted = threads or _DEFAULT_THREADS
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


def _cpu_jiffies(cores: set[int], stat: Path) -> tuple[int, int] | None:
    """(busy, total) clock ticks of the ``cores`` so far, from ``/proc/stat``'s cpuN lines."""
    busy = total = 0
    seen = 0
    for line in stat.read_text().splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cores:
            continue
        ticks = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        busy += sum(ticks) - ticks[3] - ticks[4]
        total += sum(ticks)
        seen += 1
    return (busy, total) if seen else None


def busy_cores_by_others(interval_s: float = 0.2,
                         stat: Path = Path("/proc/stat")) -> tuple[float, int] | None:
    """How many of this process's cores other processes keep busy, measured now.

    Samples the kernel's per-core CPU time (``/proc/stat``, the cores of this process's
    affinity set) and this process's own CPU time over ``interval_s`` seconds, and returns
    (``busy``, ``cores``): ``busy`` cores' worth of work that is not this process's (0 to
    ``cores``), and the number of cores. A cgroup CPU quota is not seen. None where the
    kernel does not tell (not Linux, ``/proc`` unreadable).
    """
    try:
        cores = set(os.sched_getaffinity(0))
        before, own0 = _cpu_jiffies(cores, stat), _own_seconds()
        time.sleep(interval_s)
        after, own1 = _cpu_jiffies(cores, stat), _own_seconds()
    except (AttributeError, OSError, ValueError):
        return None
    if before is None or after is None or after[1] <= before[1]:
        return None
    busy_ticks, total_ticks = after[0] - before[0], after[1] - before[1]
    # total ticks over the interval are cores x elapsed; busy/total is the busy share
    share = busy_ticks / total_ticks
    elapsed = total_ticks / len(cores) / os.sysconf("SC_CLK_TCK")  # seconds, per core
    own = (own1 - own0) / elapsed if elapsed > 0 else 0.0  # cores this process kept busy
    return max(0.0, min(float(len(cores)), share * len(cores) - own)), len(cores)


def _own_seconds() -> float:
    """CPU seconds (user + system) this process and its threads used so far."""
    t = os.times()
    return t.user + t.system


def contention_warning(threads: int, busy: float, cores: int) -> str | None:
    """A warning when a run's ``threads`` do not fit in the cores other processes leave
    free (``busy`` of ``cores`` cores, from :func:`busy_cores_by_others`), else None."""
    if busy < BUSY_THRESHOLD or threads + busy <= cores + 0.5:
        return None
    free = max(1, round(cores - busy))
    return (f"other processes keep {busy:.1f} of this machine's {cores} cores busy, and this "
            f"run computes on {threads} threads: they compete for the cores, and each runs "
            "several times slower than alone (benchmarks/cpu_threads.py). Run one training "
            f"at a time, or give this one fewer threads (--threads {free}, runtime.threads)")


def first_run_warning(device: str, threads: int) -> str | None:
    """:func:`contention_warning` for the first run on ``cpu`` in this process (it samples
    the cores for 0.2 s, once: a process that runs several stages or tests pays it once);
    None on other devices, on later calls, or when the cores are free."""
    global _MEASURED
    if device != "cpu" or _MEASURED:
        return None
    _MEASURED = True
    measured = busy_cores_by_others()
    return contention_warning(threads, *measured) if measured else None
