"""Where the CPU goes during a benchmark: per service and per thread, read from /proc (user + system
ticks) without attaching a profiler, so the figure is what the service costs and not the probe.

Java names a thread's native thread after it (its first 15 characters) and so do Python's thread
pools, so a service's busiest threads say which part of it works: the broker's request handlers
("data-plane-kafk"), a Flink operator chain ("OverAggregate["), the JIT compilers ("C2 CompilerThre"),
and so on. Threads of one name are summed (a pool's 8 request handlers are one line)."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from streamctl import lifecycle
from streamctl.live import service as live_view
from streamctl.machine.supervisor import group_pids

TICK = os.sysconf("SC_CLK_TCK")
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal in /proc/stat's cpu line


def service_processes(runtime) -> dict[str, list[int]]:
    """Each running service's processes (its process group), plus the watchdog and the live view,
    which `up` starts too. Services without a process on this machine (containers, clusters) are left out."""
    roots = {s.name: s.pid for s in lifecycle.status(runtime).services if s.pid}
    supervisor = getattr(runtime, "supervisor", None)
    watchdog = supervisor.record("watchdog") if supervisor is not None else None
    if watchdog is not None:
        roots["watchdog"] = watchdog.pid
    live = live_view.pid(runtime.settings)
    if live is not None:
        roots[live_view.NAME] = live
    return {name: group_pids(pid) or [pid] for name, pid in roots.items()}


class TaskStat(NamedTuple):
    name: str
    ticks: int  # user + system
    started: int  # ticks after boot


def _task_stat(path: str) -> TaskStat | None:
    """A /proc stat file read; None when the process or thread is gone (or the line is cut short)."""
    try:
        stat = Path(path).read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return TaskStat(stat[stat.index("(") + 1:stat.rindex(")")], int(fields[11]) + int(fields[12]), int(fields[19]))
    except (OSError, ValueError, IndexError):
        return None


def process_ticks(pids: list[int]) -> int:
    """user + system ticks of the processes so far, threads that ended included."""
    return sum(stat.ticks for pid in pids if (stat := _task_stat(f"/proc/{pid}/stat")) is not None)


def thread_ticks(pids: list[int]) -> dict[tuple[int, int, int], tuple[str, int]]:
    """(pid, tid, thread start time) -> (thread name, user + system ticks so far) for every live
    thread of the processes; the start time tells a reused thread id from the thread it replaced."""
    ticks = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # a process that ended meanwhile
        for tid in tids:
            stat = _task_stat(f"/proc/{pid}/task/{tid}/stat")
            if stat is not None:
                ticks[(pid, int(tid), stat.started)] = (stat.name, stat.ticks)
    return ticks


def machine_busy_ticks() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return sum(int(fields[i]) for i in BUSY_FIELDS)


class CpuWatch:
    """Started before a benchmark phase, read after it: each service's share of one core, its busiest
    threads, and how busy the whole machine was (200% is both of two cores full)."""

    def __init__(self, processes: dict[str, list[int]]):
        self.processes = processes
        self.before = {name: (process_ticks(pids), thread_ticks(pids)) for name, pids in processes.items()}
        self.machine_before = machine_busy_ticks()
        self.started = time.monotonic()

    def count_from_start(self, processes: dict[str, list[int]]) -> None:
        """Watch processes that started after the watch did, with all the CPU they used so far (`up`
        starts every service: what each used until it returned is what its start cost)."""
        self.processes = processes
        self.before = {name: (0, {}) for name in processes}

    def read(self, threads_per_service: int = 4) -> dict:
        seconds = time.monotonic() - self.started
        machine = machine_busy_ticks() - self.machine_before

        def percent(ticks: int) -> float:
            return round(100 * ticks / TICK / seconds, 1)

        services: dict[str, dict] = {}
        for name, pids in self.processes.items():
            (process_before, before), after = self.before[name], thread_ticks(pids)
            by_thread: Counter[str] = Counter()
            for key, (thread, ticks) in after.items():
                by_thread[thread] += ticks - before.get(key, (thread, 0))[1]
            # The total from the processes: it keeps what threads that ended meanwhile used.
            services[name] = {"percent_of_one_core": percent(max(0, process_ticks(pids) - process_before)),
                              "busiest_threads": {thread: percent(ticks) for thread, ticks
                                                  in by_thread.most_common(threads_per_service) if ticks > 0}}
        ranked = dict(sorted(services.items(), key=lambda item: -float(item[1]["percent_of_one_core"])))
        in_services = round(sum(float(s["percent_of_one_core"]) for s in services.values()), 1)
        return {"seconds": round(seconds, 1), "cores": os.cpu_count(),
                "machine_busy_percent_of_one_core": percent(machine),
                "services_percent_of_one_core": in_services,
                # the load generator, the benchmark itself and whatever else runs here
                "outside_services_percent_of_one_core": round(max(0.0, percent(machine) - in_services), 1),
                "by_service": ranked}
