"""What every runtime reports: progress callbacks, the result of `up`, the status of the stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Progress(Protocol):
    def update(self, step: str, phase: str, detail: str = "") -> None: ...


class NoProgress:
    def update(self, step: str, phase: str, detail: str = "") -> None: ...


NO_PROGRESS = NoProgress()  # the default where nobody watches (it holds no state)


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
