"""The live view as a process of this machine beside any runtime's stack: `up` starts it (detached,
pid file and log beside the local services'), `down` stops it, `streamctl ui` finds it."""

from __future__ import annotations

import ipaddress
import os
import sys
import time

from streamctl.config import Settings, settings_yaml
from streamctl.errors import StartupError
from streamctl.machine import preflight
from streamctl.machine.supervisor import Supervisor
from streamctl.net import http_url
from streamctl.waits import http_ok

NAME = "live-view"
READY_S = 60.0  # a ceiling: a live view that exits fails at once


def _supervisor(settings: Settings) -> Supervisor:
    return Supervisor(settings.stack_dir / "run", settings.stack_dir / "logs")


def url(settings: Settings) -> str:
    host = settings.bind_address
    address = ipaddress.ip_address(host)
    if address.is_unspecified:  # listening everywhere: this machine reaches it on loopback
        host = "127.0.0.1" if address.version == 4 else "::1"
    return f"{http_url(host, settings.ports.ui)}/"


def running(settings: Settings) -> bool:
    return pid(settings) is not None


def pid(settings: Settings) -> int | None:
    record = _supervisor(settings).record(NAME)
    return record.pid if record is not None else None


def ensure_running(settings: Settings) -> str:
    """Start the live view unless it runs; its URL once it answers. PreflightError: its port is taken."""
    supervisor = _supervisor(settings)
    snapshot = settings.stack_dir / "live-view.yaml"
    wanted = settings_yaml(settings)
    if supervisor.record(NAME) is not None and _read(snapshot) != wanted:  # another port, address or stack
        supervisor.stop(NAME, timeout_s=10)
    if supervisor.record(NAME) is None:
        preflight.check_ports(settings, [("ui", settings.ports.ui)])
        snapshot.write_text(wanted)
        record = supervisor.start(NAME, [sys.executable, "-m", "streamctl.live.server", "--settings", str(snapshot)],
                                  dict(os.environ), settings.stack_dir)
        deadline = time.monotonic() + READY_S
        while not http_ok(f"{url(settings)}health", 1)[0]:
            if supervisor.exited(record) or time.monotonic() > deadline:
                supervisor.stop(NAME, timeout_s=5)
                raise StartupError(f"the live view did not start: {supervisor.tail(NAME, 3)}",
                                   hint=f"see {supervisor.log_file(NAME)}")
            time.sleep(0.2)
    return url(settings)


def _read(path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def stop(settings: Settings) -> str:
    return _supervisor(settings).stop(NAME, timeout_s=10)
