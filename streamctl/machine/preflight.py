"""Checks made before anything starts. Each failure names the problem and the fix, in one line."""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streamctl.config import Settings, env_name
from streamctl.errors import PreflightError
from streamctl.machine.supervisor import RunAs

MIN_FREE_DISK_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class PortHolder:
    pid: int
    command: str


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(inode)
    return inodes


def port_holder(port: int) -> PortHolder | None:
    """The process listening on a TCP port, when /proc lets us see it."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                    return PortHolder(int(proc.name), command[:120])
        except OSError:
            continue
    return None


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return True
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise


def check_ports(settings: Settings, ports: list[tuple[str, int]]) -> None:
    """ports: (setting name, port) pairs."""
    for name, port in ports:
        if port_free(settings.bind_address, port):
            continue
        holder = port_holder(port)
        held_by = f" held by pid {holder.pid} ({holder.command})" if holder else ""
        raise PreflightError(
            f"port {port} (ports.{name}) is already in use{held_by}",
            hint=f"stop that process, or choose another port: ports.{name} in streamctl.yaml or "
                 f"{env_name('ports.' + name)}=<port>",
        )


def mem_available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def needed_memory_bytes(settings: Settings) -> int:
    s = settings
    mb = ((s.kafka.heap_mb + 200) * s.kafka.brokers + s.elasticsearch.heap(with_kibana=False) + 300 + s.flink.jobmanager_memory_mb
          + s.flink.taskmanager_memory_mb * s.flink.taskmanagers + 100 + 100 * (s.producer.workers + 1))
    return mb * 1024**2


def check_memory(settings: Settings) -> None:
    available, needed = mem_available_bytes(), needed_memory_bytes(settings)
    if available and available < needed:
        raise PreflightError(
            f"only {available / 1024**3:.1f} GiB of memory available; the stack needs about {needed / 1024**3:.1f} GiB",
            hint="close other programs, or lower kafka.heap_mb, elasticsearch.heap_mb and flink.*_memory_mb",
        )


def check_disk(path: Path) -> None:
    probe = path
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < MIN_FREE_DISK_BYTES:
        raise PreflightError(f"only {free / 1024**3:.1f} GiB free under {probe}; the stack needs 2 GiB",
                             hint="free some disk space or point state_dir elsewhere")


def service_account(name: str) -> RunAs:
    """As root: the unprivileged account PostgreSQL and Elasticsearch run as (created when missing)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run([useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
                                 "--shell", "/usr/sbin/nologin", "--user-group", name], capture_output=True, text=True)
        if result.returncode != 0:
            raise PreflightError(f"could not create the service account {name!r}: {result.stderr.strip()}",
                                 hint="create it yourself (useradd --system NAME) or set service_user") from None
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        raise PreflightError(f"service_user {name!r} is root", hint="choose an unprivileged account")
    return RunAs(name, entry.pw_uid, entry.pw_gid)
