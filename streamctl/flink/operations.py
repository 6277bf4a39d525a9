"""Job operations on every runtime, each through the JobManager's REST API and the PyFlink client:
savepoint, stop, resume, rescale, upgrade, replay, and submitting the job at `up`.

Each is idempotent where that makes sense (resume on a running job, stop on a stopped one) and
raises JobStateError (exit 8) with a hint when the job's state does not allow it."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from streamctl.errors import JobStateError, ServiceUnavailable, StartupError, StreamctlError, UsageError
from streamctl.flink.config import JOB_STATE_FORMAT, JobConfig
from streamctl.flink.placement import SAVEPOINTS_FILE, JobPlacement
from streamctl.flink.rest import JobState, find_job, latest_checkpoint
from streamctl.flink.submit import JobSubmitter, needs_submission
from streamctl.progress import NO_PROGRESS, Progress
from streamctl.waits import http_json

LIVE = ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING", "FAILING", "RECONCILING")
# What decides which window a transaction lands in and whether it counts: a job with other values
# cannot continue the state of one without them; `upgrade --replay` recomputes instead.
STATE_RULES = ("window_seconds", "dedup_minutes", "watermark_delay_seconds", "topic")


@dataclass(frozen=True)
class Savepoint:
    location: str
    taken_at: float
    job_id: str
    how: str  # savepoint | stop


def current(p: JobPlacement) -> JobState | None:
    """The stack's newest job on the cluster (live or not); ServiceUnavailable when nobody answers."""
    try:
        return find_job(p.rest_url, p.job_name)
    except (OSError, ValueError):
        raise ServiceUnavailable(f"the JobManager at {p.rest_url} does not answer",
                                 hint="start the stack with `streamctl up`") from None


def running(p: JobPlacement, doing: str) -> JobState:
    job = current(p)
    if job is None:
        raise JobStateError(f"cannot {doing}: the stack's job was never submitted", hint="run `streamctl up`")
    if job.state != "RUNNING":
        hint = ("wait until it is RUNNING (`streamctl job status`), or see `streamctl logs flink-job`"
                if job.state in LIVE else "start it with `streamctl job resume`")
        raise JobStateError(f"cannot {doing}: the job is {job.state}", hint=hint)
    return job


# -- savepoints ----------------------------------------------------------------------------------------
def savepoints(p: JobPlacement) -> list[Savepoint]:
    try:
        return [Savepoint(**entry) for entry in json.loads((p.state_dir / SAVEPOINTS_FILE).read_text())]
    except (OSError, ValueError, TypeError):
        return []


def _remember(p: JobPlacement, savepoint: Savepoint, keep: int) -> list[str]:
    """Add to the list; dispose of the oldest beyond `keep` (through the JobManager, so it works where the
    files are not on this machine). Returns the disposed locations."""
    kept = savepoints(p) + [savepoint]
    dropped, kept = kept[:-keep] if keep > 0 else [], kept[-keep:] if keep > 0 else kept
    disposed = []
    for old in dropped:
        if _dispose(p, old.location):
            disposed.append(old.location)
        else:
            kept.insert(0, old)  # not removed: keep listing it rather than lose track of it
    p.state_dir.mkdir(parents=True, exist_ok=True)
    (p.state_dir / SAVEPOINTS_FILE).write_text(json.dumps([dataclasses.asdict(s) for s in kept], indent=1))
    return disposed


def _dispose(p: JobPlacement, location: str) -> bool:
    if p.local_paths:
        path = Path(urlsplit(location).path) if location.startswith("file:") else Path(location)
        shutil.rmtree(path, ignore_errors=True)
        return not path.exists()
    try:
        status, body = http_json(f"{p.rest_url}/savepoint-disposal", 10, "POST", {"savepoint-path": location})
        if status not in (200, 202):
            return False
        trigger = body["request-id"]
        for _ in range(60):
            status, body = http_json(f"{p.rest_url}/savepoint-disposal/{trigger}", 10)
            if body.get("status", {}).get("id") == "COMPLETED":
                return "failure-cause" not in (body.get("operation") or {})
            time.sleep(0.5)
    except (OSError, ValueError, KeyError):
        pass
    return False


def _await_savepoint(p: JobPlacement, job_id: str, trigger: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = http_json(f"{p.rest_url}/jobs/{job_id}/savepoints/{trigger}", 10)
        if status == 200 and body.get("status", {}).get("id") == "COMPLETED":
            operation = body.get("operation", {})
            if "location" in operation:
                return operation["location"]
            cause = str(operation.get("failure-cause", {}).get("stack-trace", operation))[:300].splitlines()[0]
            raise JobStateError(f"the savepoint failed: {cause}", hint="see `streamctl job status` and the logs")
        time.sleep(0.5)
    raise JobStateError(f"the savepoint did not complete in {timeout_s:.0f} s",
                        hint="a backlog or slow state makes it long: try again, or raise the timeout")


def _savepoint_request(p: JobPlacement, **fields) -> dict:
    body = dict(fields)
    if p.savepoint_dir:
        body["targetDirectory" if "drain" in fields else "target-directory"] = p.savepoint_dir
    return body


def take_savepoint(p: JobPlacement, keep: int, timeout_s: float = 120) -> tuple[Savepoint, list[str]]:
    """A savepoint of the running job, which keeps running."""
    job = running(p, "take a savepoint")
    status, body = http_json(f"{p.rest_url}/jobs/{job.job_id}/savepoints", 10, "POST",
                             _savepoint_request(p, **{"cancel-job": False}))
    if status != 202:
        raise JobStateError(f"Flink refused the savepoint ({status}: {str(body)[:200]})",
                            hint="no savepoint directory? set one for the cluster (external.flink.savepoint_dir)")
    taken = Savepoint(_await_savepoint(p, job.job_id, body["request-id"], timeout_s), time.time(), job.job_id,
                      "savepoint")
    return taken, _remember(p, taken, keep)


def stop(p: JobPlacement, keep: int, drain: bool = False, timeout_s: float = 120) -> Savepoint | None:
    """Stop with a savepoint, which the next submission restores from. None: it was not running."""
    job = current(p)
    if job is None or job.ended:
        return None
    if job.state != "RUNNING":
        running(p, "stop the job")  # raises, naming the state
    status, body = http_json(f"{p.rest_url}/jobs/{job.job_id}/stop", 10, "POST", _savepoint_request(p, drain=drain))
    if status != 202:
        raise JobStateError(f"Flink refused stop-with-savepoint ({status}: {str(body)[:200]})",
                            hint="see `streamctl job status`")
    taken = Savepoint(_await_savepoint(p, job.job_id, body["request-id"], timeout_s), time.time(), job.job_id,
                      "drain" if drain else "stop")
    p.state_dir.mkdir(parents=True, exist_ok=True)
    if not drain:  # a drained job fired every window: its state is final, nothing resumes from it
        p.marker.write_text(taken.location)
    _remember(p, taken, keep)
    return taken


def cancel(p: JobPlacement, job_id: str, timeout_s: float = 60) -> None:
    """Cancel a job that is live but not RUNNING (restarting, failing): nothing to take a savepoint of."""
    http_json(f"{p.rest_url}/jobs/{job_id}?mode=cancel", 10, "PATCH")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = current(p)
        if job is None or job.job_id != job_id or job.state not in LIVE:
            return
        time.sleep(0.5)
    raise JobStateError(f"job {job_id} did not cancel in {timeout_s:.0f} s", hint="see the Flink UI")


def _stop_or_cancel(p: JobPlacement, keep: int) -> None:
    """Whatever runs stops: RUNNING with a savepoint (listed), anything else live is cancelled."""
    job = current(p)
    if job is None or job.state not in LIVE:
        return
    if job.state == "RUNNING":
        stop(p, keep)
    else:
        cancel(p, job.job_id)


# -- submitting ----------------------------------------------------------------------------------------
def restore_point(p: JobPlacement) -> str | None:
    """The savepoint `stop`/`down` left, else (after a crash) the newest retained checkpoint."""
    if p.marker.is_file():
        location = p.marker.read_text().strip()
        if not p.local_paths or _has_metadata(location):
            return location
    if p.checkpoints_dir is not None:
        newest = latest_checkpoint(p.checkpoints_dir)
        return str(newest) if newest else None
    return None


def _has_metadata(location: str) -> bool:
    path = Path(urlsplit(location).path) if location.startswith("file:") else Path(location)
    return (path / "_metadata").is_file()


def ensure_running(p: JobPlacement, progress: Progress = NO_PROGRESS, restore: str | None = None,
                   fresh: bool = False, **changes) -> tuple[str, str]:
    """Submit unless the job already runs; restore from `restore`, else the restore point (unless
    `fresh`). The marker is consumed once the job runs."""
    submitter = JobSubmitter(p.client, p.rest_url, p.log_file or p.state_dir / "flink-job.log",
                             p.failure_details, p.failure_hint)
    source = None if fresh else (restore or restore_point(p))
    config = p.effective_config(**changes)
    job = current(p)
    submitting = needs_submission(job)
    if source and submitting:
        refuse_other_state_format(p, source)
    kept = rules_of_the_state(p, config, source) if source and submitting else {}
    config = dataclasses.replace(config, **kept)
    job_id, detail = submitter.ensure_running(config, source, progress, job)
    if submitting:
        _remember_rules(p, job_id, config)
    if kept:
        detail += (f"; kept {', '.join(f'{name} {value}' for name, value in kept.items())} of the state it restored"
                   " (`streamctl job upgrade --replay` applies the settings)")
    p.marker.unlink(missing_ok=True)
    if p.checkpoints_dir is not None and p.checkpoints_dir.is_dir():  # older jobs' retained checkpoints
        for job_dir in p.checkpoints_dir.iterdir():
            if job_dir.is_dir() and job_dir.name != job_id:
                shutil.rmtree(job_dir, ignore_errors=True)
    return job_id, detail


def resume(p: JobPlacement, source: str = "latest", progress: Progress = NO_PROGRESS) -> str:
    job = current(p)
    if job is not None and job.state in LIVE:
        return f"already {job.state} ({job.job_id}); nothing to resume"
    drained = {s.location for s in savepoints(p) if s.how == "drain"}
    if source == "latest":
        listed = [s.location for s in savepoints(p) if s.how != "drain"]
        restore = restore_point(p) or (listed[-1] if listed else None)
        if restore is None:
            raise JobStateError("there is no savepoint or retained checkpoint to resume from",
                                hint="`streamctl job replay --all` recomputes from the topic")
    else:
        restore = source
        if source in drained:
            raise JobStateError(f"{source} was taken with --drain: every window in it is final, so a job resumed"
                                " from it would count the open windows again",
                                hint="`streamctl job replay --from <the time of that stop>` continues exactly")
        if p.local_paths and not _has_metadata(source):
            raise UsageError(f"savepoint {source} does not exist (no _metadata in it)",
                             hint="`streamctl job savepoints` lists the ones there are")
    _, detail = ensure_running(p, progress, restore=restore)
    return detail


def free_slots(p: JobPlacement) -> int:
    """Slots the job may use: the free ones plus those it holds now."""
    _, overview = http_json(f"{p.rest_url}/overview", 5)
    job = current(p)
    held = 0
    if job is not None and job.state == "RUNNING":
        _, detail = http_json(f"{p.rest_url}/jobs/{job.job_id}", 5)
        held = max((v.get("parallelism", 0) for v in detail.get("vertices", [])), default=0)
    return int(overview.get("slots-available", 0)) + held


def rescale(p: JobPlacement, parallelism: int, keep: int, progress: Progress = NO_PROGRESS) -> str:
    running(p, "rescale")
    slots = free_slots(p)
    if parallelism > slots:
        raise JobStateError(f"the TaskManagers offer {slots} slots for this job; parallelism {parallelism}"
                            f" needs {parallelism}", hint="add TaskManagers (flink.taskmanagers) or slots"
                                                         " (flink.slots_per_taskmanager), then `streamctl up`")
    taken = stop(p, keep)
    assert taken is not None
    p.set_overrides(parallelism=parallelism)
    try:
        _, detail = ensure_running(p, progress, restore=taken.location)
    except StartupError as exc:
        _stop_or_cancel(p, keep)
        raise StartupError(f"{exc.message}; the savepoint {taken.location} is kept",
                           hint=f"`streamctl job resume --from {taken.location}`") from None
    return f"parallelism {parallelism}, {detail}"


# The rules a restored job keeps from its state. Not the topic: the producer and the indexer follow
# the settings' topic, so a job kept on the old one would never see a new transaction.
KEPT_RULES = ("window_seconds", "dedup_minutes", "watermark_delay_seconds")
RULES_FILE = "job-rules.json"  # job id -> the KEPT_RULES it was submitted with
RULES_REMEMBERED = 50
CHECKPOINT_JOB_ID = re.compile(r"/([0-9a-f]{32})/chk-\d+")


def _known_rules(p: JobPlacement) -> dict[str, dict]:
    try:
        known = json.loads((p.state_dir / RULES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _remember_rules(p: JobPlacement, job_id: str, config: JobConfig) -> None:
    rules = {name: getattr(config, name) for name in (*KEPT_RULES, "state_format")}
    known = {**_known_rules(p), job_id: rules}
    p.state_dir.mkdir(parents=True, exist_ok=True)
    (p.state_dir / RULES_FILE).write_text(json.dumps(dict(list(known.items())[-RULES_REMEMBERED:])))


def _rules_recorded_for(p: JobPlacement, source: str) -> dict:
    """The rules of the job that took the savepoint or checkpoint at `source`, when streamctl submitted
    it; else those of the last submission (job.json); {} when neither is known."""
    match = CHECKPOINT_JOB_ID.search(source)
    job_id = next((s.job_id for s in savepoints(p) if s.location == source), match.group(1) if match else None)
    return _known_rules(p).get(job_id or "") or p.submitted()


def _state_format(rules: dict) -> int:
    """What state a job with these recorded rules wrote; jobs before the format was recorded wrote 1."""
    try:
        return int(rules.get("state_format", 1))
    except (TypeError, ValueError):
        return 1


def refuse_other_state_format(p: JobPlacement, source: str) -> None:
    """JobStateError, before anything is submitted, when the state at `source` was written by a job whose
    operators this version replaced: Flink would fail the restore with a stack trace."""
    before = _rules_recorded_for(p, source)
    if before and _state_format(before) != JOB_STATE_FORMAT:
        raise JobStateError(f"{source} holds the state of an earlier version of the job (state format"
                            f" {_state_format(before)}, this version restores {JOB_STATE_FORMAT}), which it cannot"
                            " restore", hint="`streamctl job upgrade --replay` recomputes every window from the"
                                             " topic; the savepoint is kept")


def rules_of_the_state(p: JobPlacement, config: JobConfig, source: str) -> dict:
    """The KEPT_RULES the state at `source` was built with, where `config` differs: a job restoring
    that state keeps them, or the windows it continues would be judged by rules they were not built
    with. They are those of the job that took the savepoint or checkpoint, when streamctl submitted
    it; else those of the last submission (job.json)."""
    before = _rules_recorded_for(p, source)
    kept = {}
    for name in KEPT_RULES:
        try:
            value = int(before[name])
        except (KeyError, TypeError, ValueError):
            continue  # not recorded, or not a number: the settings' value
        if value > 0 and value != getattr(config, name):
            kept[name] = value
    return kept


def incompatible_changes(p: JobPlacement) -> list[str]:
    """What differs between the running job's rules and the job as it would be submitted now."""
    before, after = p.submitted(), dataclasses.asdict(p.effective_config())
    changes = [f"{name} {before[name]} -> {after[name]}" for name in STATE_RULES
               if name in before and before[name] != after[name]]
    if before and _state_format(before) != JOB_STATE_FORMAT:
        changes.append(f"state format {_state_format(before)} -> {JOB_STATE_FORMAT} (a new retry operator)")
    return changes


def upgrade(p: JobPlacement, keep: int, progress: Progress = NO_PROGRESS) -> str:
    """Resubmit the job as stack/flink/job.py and the settings are now, from a savepoint of the old one."""
    running(p, "upgrade")
    changes = incompatible_changes(p)
    if changes:
        raise JobStateError(f"the new job cannot continue the old one's state: {', '.join(changes)}",
                            hint="`streamctl job upgrade --replay` recomputes every window from the topic instead")
    taken = stop(p, keep)
    assert taken is not None
    try:
        _, detail = ensure_running(p, progress, restore=taken.location)
    except StartupError as exc:
        _stop_or_cancel(p, keep)  # a job restarting forever would block the replay the hint suggests
        raise JobStateError(f"the new job could not take the old one's state ({exc.message})",
                            hint=f"`streamctl job upgrade --replay` rebuilds it from the topic; the old job's"
                                 f" savepoint {taken.location} is kept") from None
    return f"upgraded from savepoint: {detail}"


def replay(p: JobPlacement, keep: int, from_ms: int | None, erase: Callable[[int | None], str],
           retained_from: Callable[[], int | None] = lambda: None, progress: Progress = NO_PROGRESS) -> str:
    """Recompute every window from `from_ms` (rounded down to a window start; None: all of the topic)
    and overwrite both sinks there; windows before it are not touched.

    The job reads from the dedup horizon (plus the event-time tolerance) before that window, so every
    earlier copy of a transaction counted there is known again, and writes only windows from it on.
    The sinks' rows from it on are erased first: a row no recomputation produces (a tampered key)
    does not survive. The replayed job then goes on as the stack's job."""
    config = p.effective_config()
    window_ms = config.window_seconds * 1000
    emit_from = from_ms // window_ms * window_ms if from_ms is not None else 0
    lead_ms = config.dedup_minutes * 60_000 + config.event_time_tolerance_ms + 1000
    read_from = emit_from - lead_ms
    retained = retained_from()
    if retained is not None:  # retention deleted the topic's start: what came before cannot be recomputed
        first_exact = -(-(retained + lead_ms) // window_ms) * window_ms
        if emit_from < first_exact:
            since = datetime.fromtimestamp(first_exact / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            raise JobStateError(f"the topic no longer holds every record before {since} (retention): windows"
                                " before it cannot be recomputed, and erasing them would lose them",
                                hint=f"`streamctl job replay --from {since}`")
    _stop_or_cancel(p, keep)  # a RUNNING job's savepoint stays listed, should the replay not be what was wanted
    p.marker.unlink(missing_ok=True)  # the replay starts without state
    erased = erase(emit_from if from_ms is not None else None)
    p.set_overrides(read_from_ms=read_from if from_ms is not None and read_from > 0 else None,
                    emit_from_ms=emit_from or None)
    _, detail = ensure_running(p, progress, fresh=True)
    return f"{erased}; replaying: {detail}"


def stop_for_down(placement: Callable[[], JobPlacement], keep: int, progress: Progress = NO_PROGRESS) -> str:
    """`down`'s first step on every runtime: stop with a savepoint, or say why there is none. Never
    raises: `down` goes on to stop the services whatever happened here."""
    try:
        p = placement()
        progress.update("flink-job", "stopping", "taking a savepoint")
        taken = stop(p, keep)
        progress.update("flink-job", "stopped", "savepoint taken" if taken else "no running job")
        return f"stopped with savepoint {taken.location}" if taken else "no running job"
    except (StreamctlError, OSError, ValueError) as exc:
        # The retained checkpoints (local runtime) or the topic itself (replayed) keep it exact.
        return f"no savepoint ({getattr(exc, 'message', exc)}); the next up restores from what is there"
