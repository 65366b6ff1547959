"""What the server processes cost, read from /proc (Linux only, standard library).

- CPU: ``tree_cpu_ticks(root)`` is the root's own and reaped-children time plus
  the own and reaped time of every descendant still alive (or unreaped).  Every
  tick of the tree is counted exactly once: a process's time moves into its
  parent's ``cutime`` only when the parent reaps it, and then it is no longer
  listed.  The difference before/after a run is the run's server CPU.
- RSS: ``PeakSampler`` sums ``VmRSS`` over a set of processes every 50 ms and
  keeps the peak (short peaks between samples can be missed).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (field 3 onwards)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return None
    return st[st.rfind(")") + 2:].split()


def children_map() -> dict[int, list[int]]:
    """ppid -> child pids, for every process on the machine."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            kids.setdefault(int(fields[1]), []).append(int(entry))
    return kids


def subtree(pid: int, kids: dict[int, list[int]] | None = None) -> list[int]:
    """``pid`` and all its descendants."""
    kids = children_map() if kids is None else kids
    out: list[int] = []
    stack = [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(kids.get(p, []))
    return out


def cpu_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of one process (0 if gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0
    return sum(int(x) for x in fields[11:15])


def tree_cpu_ticks(root: int) -> int:
    """CPU ticks of the whole tree under ``root``, each tick counted once (see module doc)."""
    return sum(cpu_ticks(p) for p in subtree(root))


def ticks_to_seconds(ticks: int) -> float:
    return ticks / CLK_TCK


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def tree_rss_kib(root: int) -> int:
    return sum(rss_kib(p) for p in subtree(root))


def marked_subtrees(client_pids: Iterable[int], marker: str) -> set[int]:
    """Processes below ``client_pids`` whose command line contains ``marker``, with their subtrees.

    For ssh-style targets the server runs below the client (the fake ssh wrapper).
    """
    kids = children_map()
    found: set[int] = set()
    for client in client_pids:
        for p in subtree(client, kids):
            if p not in found and marker in cmdline(p):
                found.update(subtree(p, kids))
    return found


class PeakSampler(threading.Thread):
    """Sample the summed RSS of ``pids()`` every ``interval`` seconds; ``stop()`` returns the peak KiB."""

    def __init__(self, pids: Callable[[], Iterable[int]], interval: float = 0.05) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.pids = pids
        self.interval = interval
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, sum(rss_kib(p) for p in self.pids()))
            if self._stop_event.wait(self.interval):
                return

    def stop(self) -> int:
        self._stop_event.set()
        self.join(5)
        return self.peak
