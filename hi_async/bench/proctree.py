"""Measure a child command: wall time, CPU of it and its children, peak RSS of its tree.

CPU comes from ``resource.getrusage(RUSAGE_CHILDREN)`` deltas around the wait (user +
system of the child and every descendant it waited for), plus the CPU of descendants
nobody reaps into it (fork-server pool workers), sampled from /proc. Peak memory is the largest sum
of RSS over the child's whole process tree, sampled from /proc every few milliseconds,
because ``ru_maxrss`` reports only the largest single process, not a pool's total.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


def meminfo_kb(*fields: str) -> int | None:
    """The sum of these ``/proc/meminfo`` fields (``"MemTotal"``, ``"Dirty"`` ...) in kB; a
    field the kernel does not list counts 0. None where the file cannot be read."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return None
    return sum(int(line.split()[1]) for line in lines if line.split(":", 1)[0] in fields)


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    started_at: float = 0.0  # time.perf_counter() just before the child was started


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        for task in task_dir.iterdir():
            text = (task / "children").read_text()
            kids.extend(int(x) for x in text.split())
    except OSError:
        pass
    return kids


def _tree(pid: int, *, include_root: bool) -> Iterator[int]:
    """``pid``'s descendants (and ``pid`` itself if asked) that are running now."""
    stack = [pid] if include_root else _children(pid)
    seen: set[int] = set() if include_root else {pid}
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        yield p
        stack.extend(_children(p))


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(pid: int) -> int:
    """Sum of resident memory of ``pid`` and all its descendants, in bytes."""
    return sum(_rss(p) for p in _tree(pid, include_root=True))


def _sample_tree(pid: int) -> tuple[int, dict[int, float]]:
    """One walk of the tree: its total RSS, and the CPU so far of each descendant."""
    rss, cpu = 0, {}
    for p in _tree(pid, include_root=True):
        rss += _rss(p)
        if p != pid:
            try:
                cpu[p] = process_cpu_seconds(p)
            except (OSError, IndexError, ValueError):
                continue
    return rss, cpu


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (itself only)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def descendant_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of each running descendant of ``pid`` (not ``pid`` itself)."""
    out: dict[int, float] = {}
    for p in _tree(pid, include_root=False):
        try:
            out[p] = process_cpu_seconds(p)
        except (OSError, IndexError, ValueError):
            continue
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by the running descendants of ``pid`` (not ``pid`` itself).

    Pool workers live until the pool shuts down, so RUSAGE_CHILDREN (which counts only
    reaped children) misses them while they run; /proc has them.
    """
    return sum(descendant_cpu(pid).values())


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None,
                 sample_interval: float = 0.005, timeout: float = 1800,
                 watch: Callable[[subprocess.Popen[str], threading.Event], None] | None = None,
                 cwd: Path | None = None, count_descendants: bool = False) -> Measured:
    """Run ``cmd`` to completion and measure it.

    ``watch(proc, done)``, if given, runs in its own thread from just after the start
    until ``done`` is set (the child exited); it can observe the child while it runs.
    ``count_descendants``: add the CPU of descendants the child never reaps (see below).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd)
    peak = 0
    # Decode processes started by a fork server are never reaped by the child (the fork
    # server reaps them, and nobody reaps the fork server), so RUSAGE_CHILDREN misses
    # their CPU: with ``count_descendants`` every descendant's CPU is sampled from /proc
    # and the last value seen added. Children the child waits for (worker processes) are
    # in RUSAGE_CHILDREN already, and must not be sampled too.
    descendants: dict[int, float] = {}
    done = threading.Event()
    watcher = None
    if watch is not None:
        watcher = threading.Thread(target=watch, args=(proc, done), daemon=True)
        watcher.start()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            rss, cpu = _sample_tree(proc.pid)
            peak = max(peak, rss)
            for pid, cpu_so_far in cpu.items():
                descendants[pid] = max(descendants.get(pid, 0.0), cpu_so_far)
            done.wait(sample_interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += f"\n(killed after {timeout:.0f} s)"
    finally:
        done.set()
        sampler.join()
        if watcher is not None:
            watcher.join()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if count_descendants:
        cpu += sum(descendants.values())
    return Measured(proc.returncode, out, err, seconds, cpu, peak, started)
