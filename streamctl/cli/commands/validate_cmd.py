"""`streamctl validate`: both sinks against the Kafka topic, window by window."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table

from streamctl.cli.app import app, stderr, stdout
from streamctl.endpoints import Endpoints
from streamctl.exit_codes import ExitCode
from streamctl.load import parse_duration
from streamctl.provision import event_time_tolerance_ms, submitted_job_config
from streamctl.runtimes.select import recorded_runtime
from streamctl.validate import Validation, ValidationPlan, validate

MAX_LISTED = 10
KIBANA_MISSING = "Kibana check FAILED"


JOB_RULES = ("window_seconds", "watermark_delay_seconds", "dedup_minutes")


def validation_plan(settings, wait_s: float) -> tuple[ValidationPlan, list[str]]:
    """The running job's rules as it was submitted (job.json), and a note for each setting that
    differs from them: the job, not today's settings, decided what the sinks hold."""
    flink = settings.flink
    submitted = submitted_job_config(settings.stack_dir / "flink") or {}
    rules = {name: int(submitted.get(name, getattr(flink, name))) for name in JOB_RULES}
    notes = [f"the running job was submitted with {name} = {rules[name]}; the settings now say "
             f"{getattr(flink, name)} (validate follows the job; `streamctl up` after `down` applies the settings)"
             for name in JOB_RULES if rules[name] != getattr(flink, name)]
    tolerance = int(submitted.get("event_time_tolerance_ms", event_time_tolerance_ms(rules["watermark_delay_seconds"])))
    plan = ValidationPlan(topic=settings.kafka.topic, index=settings.elasticsearch.index,
                          event_time_tolerance_ms=tolerance, wait_s=wait_s, **rules)
    return plan, notes


def exit_code(result: Validation, notes: list[str]) -> ExitCode:
    if result.verdict == "mismatch" or any(n.startswith(KIBANA_MISSING) for n in notes):
        return ExitCode.CHECK_FAILED
    return ExitCode.OK if result.exact else ExitCode.INCONCLUSIVE


def kibana_note(settings) -> str:
    """The Kibana check: a note when it was skipped or failed; empty when the dashboard is there."""
    runtime = recorded_runtime(settings.stack_dir) or "local"
    if runtime != "docker":
        return f"Kibana is not part of the {runtime} runtime: its check was skipped"
    if "kibana" in settings.docker.disabled():
        return "Kibana is not part of this stack (docker.disabled_services): its check was skipped"
    from streamctl.runtimes.docker.kibana import DASHBOARD_ID, dashboard_present
    from streamctl.runtimes.docker.runtime import DockerRuntime

    if dashboard_present(DockerRuntime(settings).kibana_url):
        return ""
    return f"{KIBANA_MISSING}: dashboard {DASHBOARD_ID} not found (run `streamctl up` again to import it)"


def render(result: Validation) -> None:
    topic = result.topic
    stdout.print(f"topic [bold]{topic['topic']}[/]: {topic['records']:,} records = {topic['transactions']:,} "
                 f"transactions + {topic['heartbeats']:,} heartbeats + {topic['rejected']:,} rejected; "
                 f"{topic['windows']:,} window keys; watermark {topic['watermark']}", highlight=False)
    table = Table(title="sinks against the topic", title_justify="left")  # rejected_summary: per window
    for column in ("sink", "matched", "missing", "extra", "different", "verdict"):
        table.add_column(column, justify="right" if column not in ("sink", "verdict") else "left")
    for sink in result.sinks:
        verdict = "[green]exact[/]" if sink.exact else "[red]mismatch[/]"
        table.add_row(sink.name, str(sink.matched), str(len(sink.missing)), str(len(sink.extra)),
                      str(len(sink.different)), verdict)
    stdout.print(table)
    for sink in result.sinks:
        for kind in ("missing", "extra", "different"):
            entries = getattr(sink, kind)
            for entry in entries[:MAX_LISTED]:
                key = " ".join([entry["window_start"], "/".join(entry[k] for k in ("category", "brand", "payment_method",
                                                                                  "currency") if k in entry)])
                values = {k: entry[k] for k in ("expected", "actual") if k in entry}
                stdout.print(f"  [red]{sink.name} {kind}[/] {key} {json.dumps(values)}", highlight=False)
            if len(entries) > MAX_LISTED:
                stdout.print(f"  ... and {len(entries) - MAX_LISTED} more {kind} in {sink.name} (see --json)")
    if result.pending_windows:
        stdout.print(f"[yellow]{len(result.pending_windows)} window(s) not closed yet, not judged[/]: "
                     f"{', '.join(w['window_start'] for w in result.pending_windows[:5])}", highlight=False)
    if topic["duplicates_dropped"]:
        stdout.print(f"{topic['duplicates_dropped']:,} later cop(ies) of a transaction id within "
                     f"{result.job['dedup_minutes']} min of another (client retries) counted once, as the job does",
                     highlight=False)
    for note in result.notes:
        stdout.print(f"[dim]note:[/] {note}", highlight=False)
    if result.verdict == "exact":
        stdout.print(f"[bold green]EXACT[/]: every window up to the topic's end offsets judged; every transaction "
                     f"counted exactly once in both sinks ({result.seconds:.1f} s)", highlight=False)
    elif result.verdict == "mismatch":
        stdout.print(f"[bold red]MISMATCH[/]: see the differences above ({result.seconds:.1f} s)", highlight=False)
    else:
        for item in result.inconclusive:
            stdout.print(f"[bold yellow]INCONCLUSIVE[/]: {item.reason}\n[dim]hint:[/] {item.hint}", highlight=False)


@app.command("validate")
def validate_command(
    ctx: typer.Context,
    wait: Optional[str] = typer.Option(None, "--wait", help="Wait up to this long (e.g. 90s) for open windows to close."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> int:
    """Prove both sinks exact against the Kafka topic. Exit 0 exact, 1 mismatch, 2 a service unreachable,
    7 inconclusive (windows not judged yet)."""
    settings = ctx.obj.settings()
    wait_s = parse_duration(wait) if wait else 0
    plan, notes = validation_plan(settings, wait_s)
    notes += [n for n in [kibana_note(settings)] if n]
    progress = None if as_json else (lambda text: stderr.print(f"[dim]waiting: {text}[/]", highlight=False))
    result = validate(Endpoints.of(settings), plan, notes, progress)
    if as_json:
        stdout.print_json(json.dumps(result.to_json()))
    else:
        render(result)
    return exit_code(result, notes)
