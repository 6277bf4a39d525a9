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
from streamctl.runtimes.select import recorded_runtime
from streamctl.validate import Validation, ValidationPlan, validate

MAX_LISTED = 10
KIBANA_MISSING = "Kibana check FAILED"


def validation_plan(settings, wait_s: float) -> ValidationPlan:
    return ValidationPlan(topic=settings.kafka.topic, index=settings.elasticsearch.index,
                          window_seconds=settings.flink.window_seconds,
                          watermark_delay_seconds=settings.flink.watermark_delay_seconds, wait_s=wait_s)


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
    table = Table(title="sinks against the topic", title_justify="left")
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
                key = f"{entry['window_start']} {entry['category']}/{entry['brand']}/{entry['payment_method']}/{entry['currency']}"
                values = {k: entry[k] for k in ("expected", "actual") if k in entry}
                stdout.print(f"  [red]{sink.name} {kind}[/] {key} {json.dumps(values)}", highlight=False)
            if len(entries) > MAX_LISTED:
                stdout.print(f"  ... and {len(entries) - MAX_LISTED} more {kind} in {sink.name} (see --json)")
    if result.pending_windows:
        stdout.print(f"[yellow]{len(result.pending_windows)} window(s) not closed yet[/] (not counted as failures; "
                     f"--wait 90s waits for them): {', '.join(w['window_start'] for w in result.pending_windows[:5])}",
                     highlight=False)
    if result.topic["duplicate_transaction_ids"]:
        stdout.print(f"[yellow]note:[/] {result.topic['duplicate_transaction_ids']} transaction id(s) appear more than"
                     " once in the topic (client retries); each record is counted, as the job counts it",
                     highlight=False)
    rejects = result.rejects
    if rejects["in_topic"] or rejects["counted_by_job"]:
        stdout.print(f"rejected records: {rejects['in_topic']} in the topic, {rejects['counted_by_job']} counted by "
                     "the job (rejected_summary)", highlight=False)
    for note in result.notes:
        stdout.print(f"[dim]note:[/] {note}", highlight=False)
    if result.exact:
        stdout.print(f"[bold green]EXACT[/]: every transaction in the topic is counted exactly once in both sinks "
                     f"({result.seconds:.1f} s)", highlight=False)
    else:
        stdout.print(f"[bold red]MISMATCH[/]: see the differences above ({result.seconds:.1f} s)", highlight=False)


@app.command("validate")
def validate_command(
    ctx: typer.Context,
    wait: Optional[str] = typer.Option(None, "--wait", help="Wait up to this long (e.g. 90s) for open windows to close."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> int:
    """Prove both sinks exact against the Kafka topic. Exit 0 exact, 1 mismatch, 2 a service unreachable."""
    settings = ctx.obj.settings()
    wait_s = parse_duration(wait) if wait else 0
    notes = [n for n in [kibana_note(settings)] if n]
    progress = None if as_json else (lambda text: stderr.print(f"[dim]waiting: {text}[/]", highlight=False))
    result = validate(Endpoints.of(settings), validation_plan(settings, wait_s), notes, progress)
    if as_json:
        stdout.print_json(json.dumps(result.to_json()))
    else:
        render(result)
    kibana_failed = any(n.startswith(KIBANA_MISSING) for n in notes)
    return ExitCode.OK if result.exact and not kibana_failed else ExitCode.CHECK_FAILED
