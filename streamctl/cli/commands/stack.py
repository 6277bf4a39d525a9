"""`up`, `down`, `status`, `logs`: the stack's lifecycle."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Optional

import typer
from rich.live import Live
from rich.table import Table

from streamctl import lifecycle
from streamctl.cli.app import app, stderr, stdout
from streamctl.cli.commands.fetch import fetch_artifacts
from streamctl.config import exposure_warning
from streamctl.errors import UsageError
from streamctl.exit_codes import ExitCode
from streamctl.recorded import record_runtime
from streamctl.runtimes.model import StackStatus
from streamctl.runtimes.select import choose, runtime_for, stack_runtime
from streamctl.services import RUNTIME_HELP, STACK

PHASE_STYLE = {"ready": "green", "failed": "bold red", "skipped": "red", "stopped": "green"}


class LiveSteps:
    """A live table: one row per step with its phase, elapsed time and detail."""

    def __init__(self, title: str):
        self.title = title
        self.rows: dict[str, tuple[str, str, float, float | None]] = {}
        self.lock = threading.Lock()
        self.started = time.monotonic()

    def update(self, step: str, phase: str, detail: str = "") -> None:
        with self.lock:
            first_seen = self.rows.get(step, (None, None, time.monotonic(), None))[2]
            done = time.monotonic() if phase in ("ready", "failed", "skipped", "stopped") else None
            self.rows[step] = (phase, detail, first_seen, done)

    def __rich__(self) -> Table:
        table = Table(title=f"{self.title}  [dim]{time.monotonic() - self.started:.0f} s[/]", title_justify="left")
        table.add_column("step")
        table.add_column("phase")
        table.add_column("elapsed", justify="right")
        table.add_column("detail", overflow="fold")
        with self.lock:
            rows = dict(self.rows)
        order = [s.name for s in STACK]

        def position(step: str) -> int:  # kafka-2 sorts where kafka does
            role = step if step in order else step.rsplit("-", 1)[0]
            return order.index(role) if role in order else 99

        for step in sorted(rows, key=position):
            phase, detail, first, done = rows[step]
            elapsed = (done or time.monotonic()) - first
            style = PHASE_STYLE.get(phase, "yellow")
            table.add_row(step, f"[{style}]{phase}[/]", f"{elapsed:.1f} s", detail)
        return table


def bring_up(settings, runtime: str | None, offline: bool = False):
    """Shared by `up` and `demo`: choose the runtime, start with live progress, print the endpoints."""
    choice = choose(settings, runtime)
    stdout.print(f"runtime: [bold]{choice.name}[/] ({choice.reason})", highlight=False)
    stack = runtime_for(settings, choice)
    steps = LiveSteps(f"streamctl up ({settings.stack_name}, {choice.name})")

    def fetch() -> None:
        fetch_artifacts(settings.maven_repository, settings.cache_dir, offline, show_progress=stderr.is_terminal)

    record_runtime(settings.stack_dir, choice.name)  # before starting: `down` must find a half-started stack
    with Live(steps, console=stdout, refresh_per_second=4, transient=False):
        result = lifecycle.up(stack, steps, fetch=fetch)
    stdout.print()
    for note in result.notes:
        stdout.print(f"[dim]note:[/] {note}", highlight=False)
    warning = exposure_warning(settings)
    if warning:
        stderr.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    summary = (f"[green]stack {settings.stack_name!r} is up[/] in {result.seconds:.1f} s "
               f"({len(result.started)} started, {len(result.already_running)} already running)")
    stdout.print(summary, highlight=False)
    table = Table(show_header=False, box=None)
    for name, url in result.endpoints.items():
        table.add_row(f"[cyan]{name}[/]", url)
    stdout.print(table)
    return result


@app.command()
def up(
    ctx: typer.Context,
    runtime: Optional[str] = typer.Option(None, "--runtime", help=RUNTIME_HELP),
    offline: bool = typer.Option(False, "--offline", help="Do not download missing artifacts."),
) -> int:
    """Bring the whole stack up (idempotent: a running stack is reported, nothing starts twice)."""
    settings = ctx.obj.settings(runtime=runtime)
    bring_up(settings, runtime, offline)
    stdout.print("next: [bold]streamctl load --users 200[/] then [bold]streamctl validate[/]", highlight=False)
    return ExitCode.OK


@app.command()
def down(
    ctx: typer.Context,
    purge: bool = typer.Option(False, "--purge", help="Also delete the stack's data (topics, tables, indices)."),
) -> int:
    """Stop the stack in reverse dependency order (the Flink job with a savepoint); keep data unless --purge."""
    settings = ctx.obj.settings()
    stack = stack_runtime(settings, must_exist=False)  # idempotent: down of nothing is done
    steps = LiveSteps(f"streamctl down ({settings.stack_name})")
    with Live(steps, console=stdout, refresh_per_second=4):
        results = lifecycle.down(stack, purge, steps)
    stdout.print()
    stopped = [name for name, outcome in results if outcome not in ("not running",)]
    stdout.print(f"[green]stack {settings.stack_name!r} is down[/] ({len(stopped)} steps)"
                 + (", data deleted" if purge else ", data kept"), highlight=False)
    return ExitCode.OK


WIDE_STATUS = 150  # columns it takes to show endpoints and details in the same table, unwrapped


def status_tables(report: StackStatus, title: str, width: int) -> list[Table]:
    """The status table; below WIDE_STATUS columns (an 80-column terminal, any pipe) endpoints and
    details move to a second table, so no name or address is broken across lines."""
    wide = width >= WIDE_STATUS
    table = Table(title=title, title_justify="left")
    for column in ("service", "state", "health", "pid", "uptime", "RSS") + (("endpoint", "detail") if wide else ()):
        table.add_column(column, no_wrap=column != "detail", overflow="fold")
    for s in report.services:
        health = "[green]healthy[/]" if s.healthy else "[red]unhealthy[/]"
        state = f"{s.state}, {s.restarts} restart{'s' if s.restarts != 1 else ''}" if s.restarts else s.state
        row = [s.name, state, health, str(s.pid or ""), _uptime(s.uptime_s),
               f"{s.rss_bytes / 2**20:.0f} MiB" if s.rss_bytes else ""]
        table.add_row(*row, *((s.endpoint, s.detail) if wide else ()))
    if wide:
        return [table]
    where = Table(box=None, show_header=True, padding=(0, 1))
    where.add_column("service", no_wrap=True)
    where.add_column("endpoint / detail", overflow="fold")
    for s in report.services:
        where.add_row(s.name, "\n".join(part for part in (s.endpoint, s.detail) if part))
    return [table, where]


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@app.command()
def doctor(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> int:
    """Check the external runtime's clusters (external.*): reachable, credentials, CA, versions, replication.
    Exit 4 when one is not ready. Nothing is started or changed."""
    from streamctl.runtimes.external.runtime import ExternalRuntime

    settings = ctx.obj.settings()
    findings = ExternalRuntime(settings).check()
    if as_json:
        stdout.print_json(json.dumps([dataclasses.asdict(f) for f in findings]))
    else:
        table = Table(title=f"external clusters of stack {settings.stack_name!r}", title_justify="left")
        for column in ("service", "check", "detail"):
            table.add_column(column, overflow="fold")
        for f in findings:
            table.add_row(f.service, "[green]ok[/]" if f.ok else "[red]failed[/]", f.detail + (f"\nhint: {f.hint}"
                                                                                         if f.hint else ""))
        stdout.print(table)
    return ExitCode.OK if all(f.ok for f in findings) else ExitCode.PREFLIGHT_FAILED


@app.command()
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> int:
    """Each service's state, pid, health and uptime, and the Flink job's state. Exit 1 when something is down."""
    settings = ctx.obj.settings()
    report = lifecycle.status(stack_runtime(settings))
    if as_json:
        stdout.print_json(json.dumps({**dataclasses.asdict(report), "healthy": report.healthy}))
    else:
        for table in status_tables(report, f"stack {settings.stack_name!r} ({report.runtime} runtime)", stdout.width):
            stdout.print(table)
        colour = "green" if report.job_state == "RUNNING" else "red"
        behind = "" if report.job_lag_s is None else f", {report.job_lag_s:.1f} s of ingest behind" + (
            " [bold red]falling behind[/]" if report.job_falling_behind else "")
        stdout.print(f"Flink job: [{colour}]{report.job_state}[/]{behind}", highlight=False)
        for lag in report.consumer_lag:
            if "error" in lag:
                stdout.print(f"consumer lag: [red]{lag['error']}[/]", highlight=False)
            else:
                stdout.print(f"topic {lag['topic']}: end offsets {lag['end_offsets']:,}, group {lag['group']} "
                             f"committed {lag['committed']:,}, lag {lag['lag']:,}", highlight=False)
        total = sum(s.rss_bytes for s in report.services)
        stdout.print(f"total RSS: {total / 2**30:.2f} GiB", highlight=False)
    return ExitCode.OK if report.healthy else ExitCode.CHECK_FAILED


@app.command()
def logs(
    ctx: typer.Context,
    service: str = typer.Argument(..., help="A service name, or flink-job for the job submission log."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    tail: int = typer.Option(50, "--tail", "-n", help="How many lines to show first."),
) -> int:
    """Show a service's log."""
    settings = ctx.obj.settings()
    stack = stack_runtime(settings)
    names = stack.log_names()
    if service not in names:
        raise UsageError(f"no service named {service!r}", hint=f"one of: {', '.join(names)}")
    try:
        for line in stack.log_lines(service, tail, follow):
            stdout.out(line, highlight=False)
    except KeyboardInterrupt:
        return ExitCode.OK
    return ExitCode.OK
