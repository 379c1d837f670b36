"""Process-tree memory from /proc, sampled in the background while a server runs."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
SAMPLE_INTERVAL_S = 0.2
KB_PER_MB = 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_UTIME_FIELD = 11  # utime, then stime, counted from the field after the command name


@dataclass(frozen=True)
class Memory:
    """Resident memory of a process tree, in MB: RSS summed, and PSS (shared pages split)."""

    rss_mb: float
    pss_mb: float


def tree_pids(root_pid: int) -> list[int]:
    """The process and all its descendants (via /proc/<pid>/task/<tid>/children)."""
    pids, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        try:
            tasks = list((PROC / str(pid) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                stack.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
    return pids


def _field_kb(text: str, name: str) -> int:
    for line in text.splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0


def tree_memory(root_pid: int) -> Memory:
    """RSS and PSS of a process tree now (0 for processes that have gone)."""
    rss_kb = pss_kb = 0
    for pid in tree_pids(root_pid):
        try:
            rss_kb += _field_kb((PROC / str(pid) / "status").read_text(), "VmRSS:")
            pss_kb += _field_kb((PROC / str(pid) / "smaps_rollup").read_text(), "Pss:")
        except OSError:
            continue
    return Memory(rss_kb / KB_PER_MB, pss_kb / KB_PER_MB)


def tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds used so far by a process tree's live processes."""
    ticks = 0
    for pid in tree_pids(root_pid):
        try:
            fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[_UTIME_FIELD]) + int(fields[_UTIME_FIELD + 1])
    return ticks / CLOCK_TICKS


class PeakMemory:
    """Samples a process tree every SAMPLE_INTERVAL_S on a thread and keeps the peaks."""

    def __init__(self, root_pid: int, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.root_pid = root_pid
        self.interval_s = interval_s
        self.peak = Memory(0.0, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval_s):
                return

    def sample(self) -> None:
        now = tree_memory(self.root_pid)
        self.peak = Memory(max(self.peak.rss_mb, now.rss_mb), max(self.peak.pss_mb, now.pss_mb))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
