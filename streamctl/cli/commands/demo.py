"""`streamctl demo`: the whole story in one command."""

from __future__ import annotations

from typing import Optional

import typer

from streamctl import lifecycle
from streamctl.cli.app import app, stdout
from streamctl.cli.commands.load_cmd import run_load_command
from streamctl.cli.commands.stack import bring_up
from streamctl.cli.commands.validate_cmd import render
from streamctl.endpoints import Endpoints
from streamctl.exit_codes import ExitCode
from streamctl.load import LoadPlan, parse_duration
from streamctl.runtimes.select import choose, runtime_for
from streamctl.services import RUNTIME_HELP
from streamctl.verdicts import check_stack, exit_code, validation_plan

EXAMPLE_SQL = """SELECT window_start, category, sum(transaction_count) AS sales, sum(revenue) AS revenue
  FROM sales_summary GROUP BY 1, 2 ORDER BY 1 DESC, 3 DESC LIMIT 10;"""


@app.command()
def demo(
    ctx: typer.Context,
    users: Optional[int] = typer.Option(None, "--users", "-u", help="Simulated users (default 200)."),
    duration: Optional[str] = typer.Option(None, "--duration", "-t", help="Load duration (default 2m)."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help=RUNTIME_HELP),
    stop_at_end: bool = typer.Option(False, "--down", help="Stop the stack at the end."),
) -> int:
    """fetch-connectors, up, load, wait for the windows to close, validate, and show where to look."""
    settings = ctx.obj.settings(runtime=runtime, load__users=users, load__duration=duration)
    stdout.rule("1/3 up")
    result = bring_up(settings, runtime)
    stdout.rule("2/3 load")
    plan = LoadPlan(host=Endpoints.of(settings).producer_url, users=settings.load.users,
                    spawn_rate=settings.load.spawn_rate, duration_s=parse_duration(settings.load.duration))
    _, load_code = run_load_command(settings, plan, settings.load.max_failure_ratio)
    stdout.rule("3/3 validate")
    rules, _ = validation_plan(settings, 0)  # the job's, which a restored job may have kept from its state
    wait_s = rules.window_seconds + rules.watermark_delay_seconds + 60
    stdout.print(f"waiting for the last window to close (up to {wait_s} s), then comparing both sinks with the topic")
    validation = check_stack(settings, wait_s)
    render(validation)
    stdout.rule("where to look")
    for name, url in result.endpoints.items():
        stdout.print(f"[cyan]{name}[/]: {url}", highlight=False)
    endpoints = Endpoints.of(settings)
    stdout.print(f"SQL (password in {settings.stack_dir / 'secrets.json'}):\n  psql "
                 f"'{endpoints.postgres_dsn(with_password=False)}'\n  {EXAMPLE_SQL}", highlight=False)
    stdout.print(f"Elasticsearch: curl '{endpoints.elasticsearch_url}/{settings.elasticsearch.index}/_search?size=3'",
                 highlight=False)
    stdout.print("more: streamctl status | streamctl validate | streamctl load --profile max | streamctl down",
                 highlight=False)
    if stop_at_end:
        stdout.rule("down")
        lifecycle.down(runtime_for(settings, choose(settings, runtime)))
        stdout.print(f"stack {settings.stack_name!r} stopped (data kept)")
    verdict_code = exit_code(validation)
    return verdict_code if verdict_code != ExitCode.OK else load_code
