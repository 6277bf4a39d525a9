"""Validation of a stack as a whole: the plan from the running job's rules, the run, and the latest
verdict kept under the stack directory, so the live view and the report show what validate said."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from streamctl.config import Settings
from streamctl.endpoints import Endpoints
from streamctl.exit_codes import ExitCode
from streamctl.flink.config import event_time_tolerance_ms, submitted_job_config
from streamctl.pipeline.contract import format_event_time
from streamctl.recorded import recorded_runtime
from streamctl.services import for_runtime
from streamctl.validate import Validation, ValidationPlan, validate

JOB_RULES = ("window_seconds", "watermark_delay_seconds", "dedup_minutes")
KIBANA_MISSING = "Kibana check FAILED"
LATEST_FILE = "validation.json"


def validation_plan(settings: Settings, wait_s: float) -> tuple[ValidationPlan, list[str]]:
    """The running job's rules as it was submitted (job.json), and a note for each setting that
    differs from them: the job, not today's settings, decided what the sinks hold."""
    flink = settings.flink
    submitted = submitted_job_config(settings.stack_dir / "flink") or {}
    rules = {name: int(submitted.get(name, getattr(flink, name))) for name in JOB_RULES}
    notes = [f"the running job was submitted with {name} = {rules[name]}; the settings now say "
             f"{getattr(flink, name)} (validate follows the job; `streamctl job upgrade --replay` applies the settings)"
             for name in JOB_RULES if rules[name] != getattr(flink, name)]
    tolerance = int(submitted.get("event_time_tolerance_ms", event_time_tolerance_ms(rules["watermark_delay_seconds"])))
    plan = ValidationPlan(topic=settings.kafka.topic, index=settings.elasticsearch.index,
                          event_time_tolerance_ms=tolerance, wait_s=wait_s, **rules)
    return plan, notes


def kibana_note(settings: Settings) -> str:
    """The Kibana check: a note when it was skipped or failed; empty when the dashboard is there."""
    runtime = recorded_runtime(settings.stack_dir) or "local"
    if "kibana" not in {s.name for s in for_runtime(runtime)}:  # as the model says: docker's alone
        return f"Kibana is not part of the {runtime} runtime: its check was skipped"
    if "kibana" in settings.docker.disabled():
        return "Kibana is not part of this stack (docker.disabled_services): its check was skipped"
    from streamctl.kibana import DASHBOARD_ID, dashboard_present

    if dashboard_present(Endpoints.of(settings).kibana_url):
        return ""
    return f"{KIBANA_MISSING}: dashboard {DASHBOARD_ID} not found (run `streamctl up` again to import it)"


def exit_code(result: Validation) -> ExitCode:
    if result.verdict == "mismatch" or any(n.startswith(KIBANA_MISSING) for n in result.notes):
        return ExitCode.CHECK_FAILED
    return ExitCode.OK if result.exact else ExitCode.INCONCLUSIVE


def check_stack(settings: Settings, wait_s: float = 0, progress: Callable[[str], None] | None = None,
                source: str = "cli") -> Validation:
    """validate with the job's rules, and keep its verdict as the stack's latest."""
    plan, notes = validation_plan(settings, wait_s)
    notes += [n for n in [kibana_note(settings)] if n]
    result = validate(Endpoints.of(settings), plan, notes, progress)
    record(settings.stack_dir, result, source)
    return result


def summary(result: Validation, source: str, at: float) -> dict[str, Any]:
    """What the live view shows of a validation: the verdict, its counts, when and where it ran."""
    topic = result.topic
    return {
        "verdict": result.verdict, "exit_code": int(exit_code(result)), "source": source,
        "ran_at": format_event_time(int(at * 1000)), "seconds": round(result.seconds, 2),
        "transactions": topic.get("transactions", 0), "records": topic.get("records", 0),
        "windows": topic.get("windows", 0), "duplicates_dropped": topic.get("duplicates_dropped", 0),
        "sinks": {s.name: {"exact": s.exact, "matched": s.matched, "missing": len(s.missing),
                           "extra": len(s.extra), "different": len(s.different)} for s in result.sinks},
        "pending_windows": len(result.pending_windows),
        "inconclusive": [i.reason for i in result.inconclusive],
    }


def record(stack_dir: Path, result: Validation, source: str) -> dict[str, Any]:
    entry = summary(result, source, time.time())
    if stack_dir.is_dir():
        tmp = stack_dir / f".{LATEST_FILE}.tmp"
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, stack_dir / LATEST_FILE)
    return entry


def latest(stack_dir: Path) -> dict[str, Any] | None:
    """The last validate's summary for this stack, or None when it was never validated."""
    try:
        entry = json.loads((stack_dir / LATEST_FILE).read_text())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and "verdict" in entry else None
