"""Where the stack's job runs and how to reach it: the one thing each runtime supplies, so that every
job operation (submit, restore, savepoint, stop, resume, rescale, upgrade, replay) exists once."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from streamctl.errors import StreamctlError
from streamctl.flink.cluster import FlinkCluster
from streamctl.flink.config import JOB_CONFIG_FILE, JobConfig

LAST_SAVEPOINT = "last-savepoint"  # the savepoint the next submission restores from (consumed by it)
SAVEPOINTS_FILE = "savepoints.json"  # every savepoint streamctl took and kept, oldest first
OVERRIDES_FILE = "job-overrides.json"  # what `job rescale` / `job replay` changed, kept for later submissions
OVERRIDABLE = ("parallelism", "read_from_ms", "emit_from_ms")


@dataclass
class JobPlacement:
    rest_url: str  # the JobManager's REST API, from this machine
    config: JobConfig  # the job, with the addresses as its cluster reaches Kafka and PostgreSQL
    client: FlinkCluster  # the PyFlink client's conf/ and lib/ on this machine
    state_dir: Path  # stack_dir/flink: markers, the savepoint list, job.json, overrides
    savepoint_dir: str | None  # a URI as the cluster sees it; None: the cluster's state.savepoints.dir
    local_paths: bool = False  # savepoint and checkpoint locations are paths of this machine
    checkpoints_dir: Path | None = None  # retained checkpoints readable from here (crash recovery)
    log_file: Path | None = None  # the submission log
    failure_details: Callable[[], str] = lambda: ""
    failure_hint: str = ""

    @property
    def job_name(self) -> str:
        return self.config.job_name

    @property
    def marker(self) -> Path:
        return self.state_dir / LAST_SAVEPOINT

    def overrides(self) -> dict:
        try:
            data = json.loads((self.state_dir / OVERRIDES_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if k in OVERRIDABLE}

    def set_overrides(self, **changes) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        merged = {**self.overrides(), **changes}
        (self.state_dir / OVERRIDES_FILE).write_text(json.dumps({k: v for k, v in merged.items() if v is not None}))

    def effective_config(self, **changes) -> JobConfig:
        """The job as the settings describe it, with what earlier operations changed, and `changes`."""
        return dataclasses.replace(self.config, **{**self.overrides(), **changes})

    def submitted(self) -> dict:
        """job.json of the last submission, or {}."""
        try:
            return json.loads((self.state_dir / JOB_CONFIG_FILE).read_text())
        except (OSError, ValueError):
            return {}


@runtime_checkable
class JobHost(Protocol):
    """A runtime that hosts the job's cluster (or reaches one): what the job needs of it. Not part of
    the runtime contract (runtimes/model.py), which knows no Flink."""

    def job_placement(self) -> JobPlacement: ...


def placement_of(host: object) -> JobPlacement:
    """Where the stack's job runs on this runtime."""
    if not isinstance(host, JobHost):
        raise StreamctlError(f"the {getattr(host, 'name', type(host).__name__)} runtime runs no Flink job")
    return host.job_placement()
