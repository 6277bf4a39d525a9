"""The JobManager's REST API as streamctl reads it: the stack's job and its state, whether every task
runs, and the newest retained checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streamctl.names import JOB_NAME
from streamctl.waits import http_json

TERMINAL_STATES = ("FINISHED", "CANCELED", "FAILED")  # a Flink job in one of these runs no more


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str
    start_time: int

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL_STATES


def find_job(rest_url: str, name: str = JOB_NAME) -> JobState | None:
    """The newest job of that name that is not finished (or the newest at all)."""
    status, body = http_json(f"{rest_url}/jobs/overview", 5)
    if status != 200:
        return None
    jobs = [j for j in body.get("jobs", []) if j.get("name") == name]
    if not jobs:
        return None
    active = [j for j in jobs if j["state"] not in TERMINAL_STATES]
    job = max(active or jobs, key=lambda j: j.get("start-time", 0))
    return JobState(job["jid"], job["state"], job.get("start-time", 0))


def job_fully_running(rest_url: str, job_id: str) -> tuple[bool, str]:
    status, body = http_json(f"{rest_url}/jobs/{job_id}", 5)
    if status != 200:
        return False, f"job {job_id}: {status}"
    vertices = body.get("vertices", [])
    running = sum(1 for v in vertices if v.get("status") == "RUNNING")
    if body.get("state") == "RUNNING" and vertices and running == len(vertices):
        return True, f"RUNNING ({running} tasks)"
    return False, f"{body.get('state')} ({running}/{len(vertices)} tasks running)"


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest completed checkpoint (one with _metadata) under state.checkpoints.dir."""
    found = [m.parent for m in checkpoints_dir.glob("*/chk-*/_metadata")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
