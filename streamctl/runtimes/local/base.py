"""What every local service shares: where its files go, how it is launched, how it says it is ready."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from streamctl.machine.context import LocalContext
from streamctl.machine.supervisor import RunAs
from streamctl.net import host_port, http_url
from streamctl.services import HTTP, TCP, ServiceSpec, by_name
from streamctl.waits import Check, http_json, tcp_open


@dataclass(frozen=True)
class Launch:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    run_as: RunAs | None = None


# Start deadlines are ceilings for a service that hangs, not expectations: one that exits fails `up` at
# once. The JVMs' are generous because two cores starting them all at once are slow (three Kafka nodes
# took 62 s to be ready on such a machine, and a machine twice as slow would have failed a 90 s ceiling).
JVM_START_TIMEOUT_S = 240.0


class LocalService:
    """One service as a local process. Subclasses fill in prepare/launch/ready."""

    name: str = ""  # the role (services.ServiceSpec.runs_as); an instance's own name replaces it
    stop_signal: int = signal.SIGTERM
    stop_timeout_s: float = 30.0
    start_timeout_s: float = 120.0  # a ceiling for a service that hangs (JVM_START_TIMEOUT_S)

    def __init__(self, ctx: LocalContext, spec: ServiceSpec | None = None):
        self.ctx = ctx
        self.spec: ServiceSpec = spec or by_name()[self.name]
        self.name = self.spec.name  # kafka-2, flink-taskmanager-1 ... when the settings ask for several
        self.dir = ctx.service_dir(self.name)

    def prepare(self) -> None:
        """Write configuration and initialise data (idempotent; keeps existing data)."""

    def launch(self) -> Launch:
        raise NotImplementedError

    def ready(self) -> Check:
        """Ready as the stack model declares it (services.Readiness): an HTTP service's path asked from
        this machine, a TCP port that accepts; a service with a check of its own overrides this."""
        readiness = self.spec.ready
        if readiness.kind == TCP:
            port = getattr(self.ctx.settings.ports, readiness.port)
            if tcp_open(self.ctx.host, port):
                return True, f"{host_port(self.ctx.host, port)} accepts connections"
            return False, f"{host_port(self.ctx.host, port)} not listening yet"
        if readiness.kind != HTTP:
            raise NotImplementedError(f"{self.name}: a {readiness.kind} readiness needs a check of its own")
        url = http_url(self.ctx.host, getattr(self.ctx.settings.ports, readiness.port))
        try:
            status, body = http_json(f"{url}{readiness.path}", readiness.timeout_s)
        except (OSError, ValueError) as exc:
            return self.unanswered(url, exc)
        return self.answered(status, body)

    def answered(self, status: int, body) -> Check:
        """An HTTP readiness's answer, judged (and said) the service's way."""
        return status == 200, f"{self.spec.ready.path} answered {status}"

    def unanswered(self, url: str, exc: Exception) -> Check:
        return False, f"{url}: {getattr(exc, 'reason', exc)}"

    def endpoint(self) -> str:
        """A URL or address for the status table."""
        return ""
