"""`streamctl load`: Locust against the producer API with a live table."""

from __future__ import annotations

import json
import time
from typing import Optional

import typer
from rich.live import Live
from rich.table import Table

from streamctl.cli.app import app, stdout
from streamctl.endpoints import Endpoints
from streamctl.exit_codes import ExitCode
from streamctl.load import LoadPlan, LoadResult, LoadSnapshot, parse_duration, run_load
from streamctl.names import StackNames
from streamctl.pipeline.job_lag import JobLag, job_lag


def _ms(value: float | None) -> str:
    return f"{value:.0f} ms" if value is not None else "-"


def snapshot_table(s: LoadSnapshot, title: str, lag: JobLag | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("elapsed", "users", "requests/s", "requests", "failures", "p50", "p95", "p99", "job lag"):
        table.add_column(column, justify="right")
    behind = "-" if lag is None or lag.seconds is None else f"{lag.seconds:.1f} s"
    if lag is not None and lag.falling_behind:
        behind = f"[bold red]{behind} falling behind[/]"
    table.add_row(f"{s.elapsed_s:.0f} s", str(s.users), f"{s.rps:.0f}", str(s.requests),
                  f"{s.failures} ({s.failure_ratio:.2%})", _ms(s.p50_ms), _ms(s.p95_ms), _ms(s.p99_ms), behind)
    return table


def run_load_command(settings, plan: LoadPlan, max_failure_ratio: float) -> tuple[LoadResult, int]:
    """Shared by `load` and `demo`: run, render live, summarise; returns the exit code it implies."""
    output = settings.stack_dir / "load" / time.strftime("%Y%m%d-%H%M%S")
    live_title = f"streamctl load: {plan.users} users, {plan.profile} profile, {plan.duration_s} s -> {plan.host}"
    if plan.web:
        stdout.print(f"Locust web UI: http://127.0.0.1:{plan.web_port}", highlight=False)
    flink_url, job_name = Endpoints.of(settings).flink_url, StackNames.of(settings).job_name
    delay_ms = settings.flink.watermark_delay_seconds * 1000

    def lag() -> JobLag:  # how far the job trails what the load posts: read with each tick
        return job_lag(flink_url, job_name, delay_ms, timeout_s=1)

    with Live(snapshot_table(LoadSnapshot(), live_title), console=stdout, refresh_per_second=2,
              transient=True) as live:
        result = run_load(plan, output, lambda snap: live.update(snapshot_table(snap, live_title, lag())))
    final = result.final
    stdout.print(snapshot_table(final, "summary" + (" (interrupted)" if result.interrupted else ""), lag()))
    (output / "summary.json").write_text(json.dumps(result.to_json(), indent=2))
    stdout.print(f"CSV stats and HTML report: {output}", highlight=False)
    if final.requests == 0:
        stdout.print("[red]no request was made[/]")
        return result, ExitCode.CHECK_FAILED
    if final.failure_ratio > max_failure_ratio:
        stdout.print(f"[red]failure ratio {final.failure_ratio:.2%} is above {max_failure_ratio:.2%}[/]",
                     highlight=False)
        return result, ExitCode.CHECK_FAILED
    stdout.print(f"[green]ok[/] failure ratio {final.failure_ratio:.2%} (limit {max_failure_ratio:.2%})",
                 highlight=False)
    return result, ExitCode.OK


@app.command()
def load(
    ctx: typer.Context,
    users: Optional[int] = typer.Option(None, "--users", "-u", help="Concurrent simulated users (default 200)."),
    spawn_rate: Optional[int] = typer.Option(None, "--spawn-rate", "-r", help="Users started per second."),
    duration: Optional[str] = typer.Option(None, "--duration", "-t", help="How long: 90s, 2m, 1h (default 2m)."),
    host: Optional[str] = typer.Option(None, "--host", help="Producer API URL (default: this stack's)."),
    profile: str = typer.Option("seed", "--profile", help="seed: 1-3 s between tasks; max: no wait, for throughput."),
    workers: int = typer.Option(0, "--workers", help="Run Locust distributed: a master and N worker processes."),
    web: bool = typer.Option(False, "--web", help="Steer the load in Locust's web UI on 127.0.0.1:8089."),
    max_failure_ratio: Optional[float] = typer.Option(None, "--max-failure-ratio",
                                                      help="Exit 1 above this failure ratio (default 0.01)."),
) -> int:
    """Post transactions to the producer API with Locust; live figures, then a summary and reports."""
    settings = ctx.obj.settings(load__users=users, load__spawn_rate=spawn_rate, load__duration=duration,
                                load__max_failure_ratio=max_failure_ratio)
    plan = LoadPlan(host=host or Endpoints.of(settings).producer_url, users=settings.load.users,
                    spawn_rate=settings.load.spawn_rate, duration_s=parse_duration(settings.load.duration),
                    profile=profile, workers=workers, web=web)
    _, code = run_load_command(settings, plan, settings.load.max_failure_ratio)
    return code
