"""How far the aggregation job trails the front door, in seconds of ingest.

Every record's event time lies within a tolerance of the time the topic appended it, so a job that has
read everything written up to a moment has its watermark at that moment less the watermark delay. The
lag is the wall clock, less that delay, less the lowest input watermark of the job's operators after
its sources: the seconds of ingest the job has not read yet, about 0 when it keeps up. Committed
offsets, the other measure, trail by up to a checkpoint interval even when the job keeps up.

Read from the JobManager's REST API; shared by `status`, `job status`, the live view, `load`, the
producer's admission control and the benchmarks."""

from __future__ import annotations

import time
from dataclasses import dataclass

from streamctl.waits import http_json

# Past this many seconds of ingest not read yet, the job is said to be falling behind.
FALLING_BEHIND_S = 5.0
# The JobManager answers a metrics request from what it fetched before, and fetches anew (at most every
# metrics.fetcher.update-interval) when asked: a reading after a first request and this pause is at most
# about a second old, where a single request could return whatever the last caller left, minutes ago.
METRICS_SETTLE_S = 0.5
NO_WATERMARK = 2**62  # Flink reports Long.MIN_VALUE (or nothing) before the first watermark


@dataclass(frozen=True)
class JobLag:
    seconds: float | None  # None: no running job, or no watermark yet
    detail: str = ""

    @property
    def falling_behind(self) -> bool:
        return self.seconds is not None and self.seconds > FALLING_BEHIND_S

    def describe(self) -> str:
        if self.seconds is None:
            return self.detail or "unknown"
        return f"{self.seconds:.1f} s behind" + (" (falling behind)" if self.falling_behind else "")


def lowest_watermark_ms(rest_url: str, job_id: str, vertex_id: str, timeout_s: float = 5) -> int | None:
    """The lowest watermark of a vertex's subtasks, None before its first."""
    status, body = http_json(f"{rest_url}/jobs/{job_id}/vertices/{vertex_id}/watermarks", timeout_s)
    values = [int(float(w["value"])) for w in body or [] if status == 200 and "value" in w]
    real = [v for v in values if 0 < v < NO_WATERMARK]
    return min(real) if real else None


def running_job_id(rest_url: str, job_name: str, timeout_s: float = 5) -> str | None:
    status, body = http_json(f"{rest_url}/jobs/overview", timeout_s)
    jobs = [j for j in (body or {}).get("jobs", []) if j.get("name") == job_name and j.get("state") == "RUNNING"]
    return max(jobs, key=lambda j: j.get("start-time", 0))["jid"] if status == 200 and jobs else None


def refresh_metrics(rest_url: str, job_id: str, vertex_id: str, timeout_s: float = 5) -> None:
    """Ask once so that the JobManager fetches the TaskManagers' metrics, and give it METRICS_SETTLE_S."""
    http_json(f"{rest_url}/jobs/{job_id}/vertices/{vertex_id}/watermarks", timeout_s)
    time.sleep(METRICS_SETTLE_S)


def input_watermark_ms(rest_url: str, job_id: str, timeout_s: float = 5, fresh: bool = True) -> int | None:
    """The lowest watermark among the job's operators after its sources: how far it has read. `fresh`:
    metrics fetched for this reading (see METRICS_SETTLE_S); a caller that polls every second needs not."""
    status, detail = http_json(f"{rest_url}/jobs/{job_id}", timeout_s)
    if status != 200:
        return None
    vertices = [v["id"] for v in detail.get("vertices", []) if not v.get("name", "").startswith("Source:")]
    if fresh and vertices:
        refresh_metrics(rest_url, job_id, vertices[0], timeout_s)
    marks = [lowest_watermark_ms(rest_url, job_id, vertex, timeout_s) for vertex in vertices]
    known = [m for m in marks if m is not None]
    return min(known) if known and len(known) == len(marks) else None


def job_lag(rest_url: str, job_name: str, watermark_delay_ms: int, timeout_s: float = 5,
            fresh: bool = True) -> JobLag:
    """The running job's lag; JobLag(None, why) when it cannot be told. Never raises for a JobManager
    that does not answer."""
    try:
        job_id = running_job_id(rest_url, job_name, timeout_s)
        if job_id is None:
            return JobLag(None, "no running job")
        watermark = input_watermark_ms(rest_url, job_id, timeout_s, fresh)
    except (OSError, ValueError) as exc:
        return JobLag(None, f"the JobManager does not answer ({getattr(exc, 'reason', exc)})")
    if watermark is None:
        return JobLag(None, "no watermark yet")
    return JobLag(round(max(0.0, (time.time() * 1000 - watermark_delay_ms - watermark) / 1000), 2))
