"""`streamctl validate`: both sinks against the Kafka topic, window by window."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table

from streamctl.cli.app import app, stderr, stdout
from streamctl.load import parse_duration
from streamctl.validate import Validation
from streamctl.verdicts import check_stack, exit_code

MAX_LISTED = 10


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
    progress = None if as_json else (lambda text: stderr.print(f"[dim]waiting: {text}[/]", highlight=False))
    result = check_stack(settings, wait_s, progress)
    if as_json:
        stdout.print_json(json.dumps(result.to_json()))
    else:
        render(result)
    return exit_code(result)
