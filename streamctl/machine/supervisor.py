"""Start, find and stop the stack's processes. A pid file records the pid and the process's start
time, so a reused pid is never mistaken for ours after a crash or a reboot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account for servers that refuse to run as root (PostgreSQL, Elasticsearch)."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int
    started_at: float
    argv: tuple[str, ...]


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: the process's start time in clock ticks since boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie is gone for our purposes
        return None
    return int(fields[19])


def process_alive(record: ProcessRecord) -> bool:
    return _start_ticks(record.pid) == record.start_ticks


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def group_pids(pgid: int) -> list[int]:
    """Every live process in a process group (a service and its children)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


class Supervisor:
    def __init__(self, run_dir: Path, log_dir: Path):
        self.run_dir = run_dir
        self.log_dir = log_dir

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def held_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.held"

    def held(self, name: str) -> bool:
        """Stopped on purpose (stop() was called): the watchdog leaves it down until the next start."""
        return self.held_file(name).exists()

    def record(self, name: str) -> ProcessRecord | None:
        """The recorded process if it is still alive; a stale pid file is removed."""
        path = self.pid_file(name)
        try:
            data = json.loads(path.read_text())
            record = ProcessRecord(name, data["pid"], data["start_ticks"], data["started_at"], tuple(data["argv"]))
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)
            return None
        if process_alive(record):
            return record
        path.unlink(missing_ok=True)
        return None

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path,
              run_as: RunAs | None = None) -> ProcessRecord:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.held_file(name).unlink(missing_ok=True)
        log = self.log_file(name).open("ab")
        log.write(f"\n--- streamctl: starting {name} at {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
        log.flush()
        if run_as is not None:
            os.chown(self.log_file(name), run_as.uid, run_as.gid)
        process = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stopping it reaches its children too
            user=run_as.uid if run_as else None, group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None, umask=0o077,
        )
        log.close()
        ticks = _start_ticks(process.pid) or 0
        record = ProcessRecord(name, process.pid, ticks, time.time(), tuple(argv))
        self.pid_file(name).write_text(json.dumps({"pid": record.pid, "start_ticks": ticks,
                                                   "started_at": record.started_at, "argv": list(argv)}))
        return record

    def exited(self, record: ProcessRecord) -> bool:
        """Reap our own child if it ended (so it does not linger as a zombie) and say whether it is gone."""
        try:
            pid, _ = os.waitpid(record.pid, os.WNOHANG)
        except ChildProcessError:
            pid = 0
        return pid == record.pid or not process_alive(record)

    def stop(self, name: str, stop_signal: int = signal.SIGTERM, timeout_s: float = 30.0) -> str:
        """Graceful stop, then SIGKILL to the whole process group after the timeout."""
        record = self.record(name)
        if record is None:
            return "not running"
        if self.run_dir.is_dir():
            self.held_file(name).touch()
        try:
            os.kill(record.pid, stop_signal)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout_s
        graceful = False
        while time.monotonic() < deadline:
            if self.exited(record):
                graceful = True
                break
            time.sleep(0.1)
        # Whatever is left of the process group (the service after the timeout, or children it left).
        leftovers = ([] if graceful else [record.pid]) + group_pids(record.pid)
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        outcome = "stopped" if graceful else "killed after timeout"
        self._wait_gone(record.pid)
        self.pid_file(name).unlink(missing_ok=True)
        return outcome

    def _wait_gone(self, pgid: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and group_pids(pgid):
            for pid in group_pids(pgid):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            time.sleep(0.1)

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.log_file(name)
        if not path.is_file():
            return ""
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])
