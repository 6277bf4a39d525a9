"""`streamctl bench`: measured figures, printed and written as JSON (never pass/fail)."""

from __future__ import annotations

import json
import time

import typer
from rich.table import Table

from streamctl.bench.cpu import service_processes
from streamctl.bench.freshness import bench_freshness
from streamctl.bench.ingest import bench_ingest
from streamctl.bench.job_throughput import bench_job
from streamctl.bench.soak import bench_soak
from streamctl.bench.suite import bench_idle, bench_startup, bench_validate, machine
from streamctl.cli.app import app, stdout
from streamctl.endpoints import Endpoints
from streamctl.exit_codes import ExitCode
from streamctl.runtimes.select import stack_runtime

bench_app = typer.Typer(help="Benchmarks on the running stack: figures printed and written as JSON.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _write(settings, name: str, figures: dict) -> None:
    figures = {"benchmark": name, "machine": machine(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               **figures}
    out = settings.stack_dir / "bench" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    stdout.print_json(json.dumps(figures))
    stdout.print(f"written to {out}", highlight=False)


@bench_app.command("ingest")
def ingest(ctx: typer.Context, seconds: int = typer.Option(20, help="Seconds per server."),
           connections: int = typer.Option(32, help="wrk connections.")) -> int:
    """The producer API against a Flask development server that flushes Kafka per request, same Kafka."""
    settings = ctx.obj.settings()
    result = bench_ingest(Endpoints.of(settings), settings.kafka.topic, seconds, connections,
                          service_processes(stack_runtime(settings)))
    table = Table(title="ingest (one run, same machine, same Kafka)", title_justify="left")
    for column in ("server", "acknowledged/s", "acknowledged", "in topic", "requests", "non-2xx", "errors",
                   "mean latency"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for f in result["figures"]:
        table.add_row(f["server"], f"{f['acknowledged_per_s']:,.0f}", f"{f['acknowledged']:,}",
                      f"{f['topic_grew_by']:,}", f"{f['requests']:,}", str(f["non_2xx"]), str(f["errors"]),
                      f"{f['latency_avg_ms']:.1f} ms")
    stdout.print(table)
    if not result["topic_holds_every_acknowledged_record"]:
        stdout.print("[bold red]the topic grew by less than was acknowledged[/]", highlight=False)
    stdout.print(f"ratio producer API / baseline: [bold]{result['ratio_single_vs_baseline']:.1f}x[/]", highlight=False)
    for server, cpu in result["cpu_during"].items():
        _print_cpu(f"CPU during {server}", cpu)
    _write(settings, "ingest", result)
    return ExitCode.OK


def _print_cpu(title: str, cpu: dict) -> None:
    """Where the CPU went: each service's share of one core and its busiest threads."""
    table = Table(title=f"{title}: machine {cpu['machine_busy_percent_of_one_core']}% of one core "
                        f"({cpu['cores']} cores), outside the services {cpu['outside_services_percent_of_one_core']}%",
                  title_justify="left")
    table.add_column("service")
    table.add_column("% of one core", justify="right")
    table.add_column("busiest threads (% of one core)")
    for name, figures in cpu["by_service"].items():
        threads = ", ".join(f"{thread} {percent}" for thread, percent in figures["busiest_threads"].items())
        table.add_row(name, str(figures["percent_of_one_core"]), threads)
    stdout.print(table)


@bench_app.command("startup")
def startup(ctx: typer.Context, runs: int = typer.Option(1, help="How many down/up cycles."),
            settle: int = typer.Option(20, help="Seconds after `up` before the idle CPU is measured; JIT "
                                                "compilers still work for a few minutes after a start.")) -> int:
    """`down` then `up` with artifacts cached, until the job is RUNNING; then idle RSS and CPU over 60 s."""
    settings = ctx.obj.settings()
    runtime = stack_runtime(settings)
    result = bench_startup(runtime, runs)
    _print_cpu(f"CPU during the fastest up ({result['best_s']} s; the job's submission client ended before it"
               " returned: outside the services)", result["up_cpu_profile"])
    result.update(bench_idle(runtime, settle_s=settle))
    _print_cpu(f"idle CPU, {settle} s after up, over {result['cpu_window_s']} s", result["idle_cpu_profile"])
    _write(settings, "startup", result)
    return ExitCode.OK


@bench_app.command("freshness")
def freshness(ctx: typer.Context, windows: int = typer.Option(10, help="Consecutive windows to measure.")) -> int:
    """Window end -> its row visible in PostgreSQL and in Elasticsearch (p50, p95, max)."""
    settings = ctx.obj.settings()
    stdout.print(f"posting one marked transaction in each of {windows} windows of {settings.flink.window_seconds} s; "
                 "polling both sinks every 100 ms", highlight=False)
    _write(settings, "freshness", bench_freshness(settings, windows))
    return ExitCode.OK


@bench_app.command("validate")
def validate_speed(ctx: typer.Context, records: int = typer.Option(1_000_000, help="Transactions to validate.")) -> int:
    """Write N transactions to a scratch topic and time validate's scan and recomputation of the windows."""
    settings = ctx.obj.settings()
    _write(settings, "validate", bench_validate(settings, records))
    return ExitCode.OK


@bench_app.command("job")
def job_throughput(ctx: typer.Context, records: int = typer.Option(1_000_000, help="Transactions to replay."),
                   preload: int = typer.Option(0, help="Other transactions written first, inside the retry horizon"
                                                     " the replay reads back: the retry state holds them.")) -> int:
    """Stop the job, write N transactions, replay from their window; time until both sinks hold them all."""
    settings = ctx.obj.settings()
    stdout.print(f"stopping the job, writing {preload:,} + {records:,} transactions, replaying from the window"
                 " of the last", highlight=False)
    result = bench_job(stack_runtime(settings), records, preload)
    _print_cpu("CPU from the replay's submission until the job had read every record", result["cpu_until_caught_up"])
    _write(settings, "job", result)
    return ExitCode.OK


@bench_app.command("soak")
def soak(ctx: typer.Context, seconds: int = typer.Option(600, help="Seconds of load."),
         connections: int = typer.Option(32, help="wrk connections."),
         batch: int = typer.Option(0, help="Post batches of this many records (POST /transactions, two client"
                                           " threads) instead of single ones.")) -> int:
    """Single-record POSTs (or batches) at the API's maximum for minutes: the job's lag every 5 s,
    freshness per window, the time to catch up once the load stops, and validate's verdict."""
    settings = ctx.obj.settings()
    how = f"batches of {batch:,} from 2 threads" if batch else f"single transactions with {connections} connections"
    stdout.print(f"posting {how} for {seconds} s", highlight=False)
    result = bench_soak(stack_runtime(settings), seconds, connections, batch)
    table = Table(title="soak: the job against the front door", title_justify="left")
    for column in ("figure", "measured", "goal"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    goal = result["goal"]
    fresh = (result["freshness"].get("freshness") or {}).get("both") or {}
    table.add_row("accepted/s", f"{result['accepted_per_s']:,}", ">= 30,000" if batch else ">= 3,500")
    table.add_row("job lag at the end of the load", f"{result['lag_s_at_end']} s", f"< {goal['lag_s_at_end_below']} s")
    table.add_row("job lag, largest sample", f"{result['lag_s_max']} s", "")
    table.add_row("caught up after the load", f"{result['caught_up_s_after_load']} s",
                  f"<= {goal['caught_up_within_s']} s")
    table.add_row("freshness p95 (both sinks)", f"{fresh.get('p95_s')} s", f"<= {goal['freshness_p95_s_at_most']} s")
    table.add_row("validate", str(result["validate"]), goal["validate"])
    stdout.print(table)
    _print_cpu("CPU during the load", result["cpu_during_load"])
    _write(settings, "soak", result)
    return ExitCode.OK
