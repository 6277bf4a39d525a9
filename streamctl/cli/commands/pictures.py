"""The views: `streamctl dashboard` (live, in the terminal), `streamctl ui` (live, in a browser) and
`streamctl report --html FILE` (the browser view's sections written once as a self-contained page)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table

from streamctl.bench.history import bench_history
from streamctl.cli.app import app, stdout
from streamctl.dashboard import DashboardData, DashboardFeed
from streamctl.errors import PreflightError, ServiceUnavailable
from streamctl.exit_codes import ExitCode
from streamctl.live import service as live_view
from streamctl.live.observer import Observer
from streamctl.live.render import page
from streamctl.machine import preflight
from streamctl.runtimes.select import stack_runtime


def _bar(value: float, peak: float, width: int = 30) -> str:
    return "█" * max(1, int(width * value / peak)) if peak else ""


def dashboard_view(data: DashboardData, stack_name: str) -> Group:
    window = data.window_start.strftime("%Y-%m-%d %H:%M:%S %Z") if data.window_start else "no window yet"
    revenue = Table(title=f"revenue by category, window {window}", title_justify="left")
    revenue.add_column("category")
    revenue.add_column("revenue", justify="right")
    revenue.add_column("")
    peak = float(max((r for _, r in data.revenue_by_category), default=0))
    for category, value in data.revenue_by_category:
        revenue.add_row(category, f"{value:,.2f}", f"[blue]{_bar(float(value), peak)}[/]")
    payments = Table(title="sales by payment method", title_justify="left")
    payments.add_column("payment method")
    payments.add_column("sales", justify="right")
    payments.add_column("")
    peak = max((n for _, n in data.sales_by_payment), default=0)
    for method, count in data.sales_by_payment:
        payments.add_row(method, str(count), f"[magenta]{_bar(count, peak)}[/]")
    pipeline = Table(title="pipeline", title_justify="left")
    pipeline.add_column("figure")
    pipeline.add_column("value", justify="right")
    rate = f"{data.accepted_per_s:,.0f}/s" if data.accepted_per_s is not None else "-"
    pipeline.add_row("accepted transactions", f"{data.accepted_total:,}" if data.accepted_total is not None else "-")
    pipeline.add_row("throughput", rate)
    colour = "green" if data.job_state == "RUNNING" else "red"
    pipeline.add_row("Flink job", f"[{colour}]{data.job_state}[/]")
    for lag in data.lags:
        pipeline.add_row(f"lag {lag.group} ({lag.topic})", f"{lag.lag:,}")
    parts: list[RenderableType] = [
        f"[bold]streamctl dashboard[/]: stack {stack_name}  [dim]{time.strftime('%H:%M:%S')}[/]", revenue, payments,
        pipeline]
    if data.problems:
        parts.append(f"[red]{'; '.join(data.problems)}[/]")
    return Group(*parts)


@app.command()
def dashboard(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Print one frame and exit (for scripts)."),
    refresh: float = typer.Option(1.0, "--refresh", help="Seconds between refreshes."),
) -> int:
    """A live view of the latest window: revenue by category, sales by payment method, throughput, lag, job."""
    settings = ctx.obj.settings()
    feed = DashboardFeed(settings)
    if once:
        stdout.print(dashboard_view(feed.poll(), settings.stack_name))
        return ExitCode.OK
    with Live(dashboard_view(feed.poll(), settings.stack_name), console=stdout, refresh_per_second=4,
              screen=False) as live:
        try:
            while True:
                time.sleep(refresh)
                live.update(dashboard_view(feed.poll(), settings.stack_name))
        except KeyboardInterrupt:
            pass
    return ExitCode.OK


@app.command()
def ui(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the figures behind the page as JSON and exit."),
) -> int:
    """The live web view of the stack: its address when `up` started it, otherwise serve it here until Ctrl-C."""
    settings = ctx.obj.settings()
    stack_runtime(settings)  # a stack that was never brought up is a usage error naming the ones there are
    if as_json:
        stdout.print_json(json.dumps(Observer(settings).snapshot_now()))
        return ExitCode.OK
    if live_view.running(settings):
        stdout.print(f"live view of stack {settings.stack_name!r}: [bold]{live_view.url(settings)}[/]", highlight=False)
        return ExitCode.OK
    preflight.check_ports(settings, [("ui", settings.ports.ui)])
    from streamctl.live.server import serve

    stdout.print(f"live view of stack {settings.stack_name!r}: [bold]{live_view.url(settings)}[/] (Ctrl-C stops it)",
                 highlight=False)
    stop = threading.Event()
    try:
        serve(Observer(settings), settings.bind_address, settings.ports.ui, stop)
    except KeyboardInterrupt:
        stop.set()
    except OSError as error:  # taken between the check above and the bind
        raise PreflightError(f"port {settings.ports.ui} (ports.ui) cannot be used: {error.strerror}",
                             hint="choose another port: ports.ui in streamctl.yaml or STREAMCTL_PORTS_UI=<port>") from None
    return ExitCode.OK


@app.command()
def report(
    ctx: typer.Context,
    html_file: Path = typer.Option(..., "--html", help="Write a self-contained HTML page with charts here."),
) -> int:
    """The live view's sections as one self-contained page (no scripts, nothing fetched): windows, ingest,
    Kafka lag, the job, freshness, the latest validate verdict, and the stack's benchmark runs as charts."""
    settings = ctx.obj.settings()
    snapshot = Observer(settings).snapshot_now()
    snapshot["benchmarks"] = bench_history(settings.stack_dir / "bench")
    if snapshot["windows"] is None:
        raise ServiceUnavailable("; ".join(snapshot["problems"]) or "PostgreSQL could not be read",
                                 hint="is the stack up? `streamctl status`")
    html_file.parent.mkdir(parents=True, exist_ok=True)
    html_file.write_text(page(snapshot, live=False))
    totals = snapshot["windows"]["totals"]
    stdout.print(f"[green]wrote[/] {html_file} ({totals['transactions']:,} transactions in {totals['windows']:,} "
                 "windows)", highlight=False)
    return ExitCode.OK
