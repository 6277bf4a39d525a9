"""The runtime contract (Runtime: what a runtime does; lifecycle does the rest) and what every
runtime reports: the result of `up`, the status of the stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterator, Protocol

from streamctl.config import Settings
from streamctl.endpoints import Endpoints
from streamctl.progress import NO_PROGRESS, NoProgress, Progress  # noqa: F401  (known here first)
from streamctl.services import ServiceSpec


@dataclass
class UpResult:
    seconds: float
    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    endpoints: dict[str, str] = field(default_factory=dict)


@dataclass
class ServiceStatus:
    name: str
    state: str  # running | stopped
    healthy: bool
    detail: str
    pid: int | None = None
    uptime_s: float | None = None
    rss_bytes: int = 0
    endpoint: str = ""
    restarts: int = 0  # how often the runtime's restart policy brought it back after a crash


@dataclass
class StackStatus:
    runtime: str
    services: list[ServiceStatus]
    job_state: str
    consumer_lag: list[dict] = field(default_factory=list)  # per group: topic, end offsets, committed, lag
    job_lag_s: float | None = None  # seconds of ingest the job has not read (pipeline/job_lag.py)
    job_falling_behind: bool = False

    @property
    def healthy(self) -> bool:
        return all(s.healthy for s in self.services) and self.job_state == "RUNNING"


class Runtime(Protocol):
    """What a runtime does; `lifecycle` does the rest. It knows no service in particular: what the
    job needs of a runtime is flink.placement.JobHost, what the topics need provision.TopicHost."""

    name: str
    settings: Settings
    specs: tuple[ServiceSpec, ...]  # the stack as this runtime runs it (topology.stack)
    owns_clusters: bool  # it created Kafka, PostgreSQL...: it may create the database, and purge

    def exclusive(self) -> ContextManager[None]:
        """Held for the whole of `up`: one `up` per stack at a time."""
        ...

    def preflight(self, fetch: Callable[[], None] | None, progress: Progress) -> list[str]:
        """Refuse, before anything starts, what cannot work; then fetch; then prepare what every
        service needs (directories, secrets, images). Returns notes for the user."""
        ...

    def start(self, spec: ServiceSpec, progress: Progress) -> bool:
        """Start one service unless it runs, and wait until it is ready. True: it was already running."""
        ...

    def after_up(self) -> None: ...

    def before_down(self, purge: bool) -> None:
        """Refuse a `down` that cannot be (`--purge` of clusters streamctl did not create); stop
        whatever would restart the services meanwhile."""
        ...

    def stop(self, spec: ServiceSpec, progress: Progress) -> str: ...

    def release(self, purge: bool, progress: Progress) -> list[tuple[str, str]]:
        """After every service stopped: what is left (a network), and the data with `purge`."""
        ...

    def inspect(self, spec: ServiceSpec) -> ServiceStatus: ...

    def endpoints(self) -> Endpoints:
        """The services as this machine's clients reach them."""
        ...

    def addresses(self) -> dict[str, str]:
        """What `up` prints: a name and an address per thing a user opens."""
        ...

    def running(self, role: str) -> bool:
        """A service of this role (services.ServiceSpec.runs_as) is running for the stack: one this
        runtime started, or a cluster someone else runs that it reaches."""
        ...

    def log_names(self) -> list[str]: ...

    def log_lines(self, name: str, tail: int, follow: bool) -> Iterator[str]: ...
