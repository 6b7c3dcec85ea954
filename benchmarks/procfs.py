"""Process figures from /proc (psutil is not installed): peak memory and CPU time of a tree."""

from __future__ import annotations

import os
from pathlib import Path

#: Clock ticks per second, the unit of utime/stime in /proc/<pid>/stat.
TICKS = os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int:
    """VmHWM (the resident set's high-water mark) of `pid`, in KiB; 0 once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time `pid` has used so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces: count fields after its closing bracket.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree(pid: int) -> list[int]:
    """`pid` and every live descendant of it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time used by `pid` and its live descendants."""
    return sum(cpu_seconds(p) for p in tree(pid))


def tree_peak_rss_kib(pid: int) -> int:
    """The largest VmHWM among `pid` and its live descendants (one worker process's peak)."""
    return max((peak_rss_kib(p) for p in tree(pid)), default=0)


def named(command: str) -> list[int]:
    """Every live process whose command name (`comm`) is `command`, e.g. "postgres"."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm == command:
            found.append(int(entry.name))
    return found


def named_cpu_seconds(command: str) -> float:
    """CPU time used so far by every live process named `command` (a server's backends)."""
    return sum(cpu_seconds(p) for p in named(command))
