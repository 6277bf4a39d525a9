"""`streamctl job ...`: operate the running Flink job on any runtime; each operation's guarantee is in docs/job-operations.md."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime, timezone
from typing import Callable, Optional

import typer
from rich.table import Table

from streamctl.cli.app import app, stdout
from streamctl.config import Settings
from streamctl.endpoints import Endpoints
from streamctl.errors import UsageError
from streamctl.exit_codes import ExitCode
from streamctl.flink import operations
from streamctl.flink.placement import JobPlacement, placement_of
from streamctl.flink.sinks import erase_windows, wait_until_indexed
from streamctl.flink.status import job_report
from streamctl.kafka_info import retained_from_ms
from streamctl.load import parse_duration
from streamctl.names import StackNames
from streamctl.runtimes.select import stack_runtime

job_app = typer.Typer(help="Operate the Flink job: status, savepoints, stop, resume, rescale, upgrade, replay.",
                      no_args_is_help=True)
app.add_typer(job_app, name="job")


def _placement(ctx: typer.Context) -> tuple[Settings, JobPlacement]:
    settings = ctx.obj.settings()
    return settings, placement_of(stack_runtime(settings))


def _endpoints(settings: Settings) -> Endpoints:
    """The stack's services as this machine reaches them (the placement holds the job's own view)."""
    return stack_runtime(settings).endpoints()


def _done(as_json: bool, started: float, **fields) -> int:
    seconds = round(time.monotonic() - started, 1)
    if as_json:
        stdout.print_json(json.dumps({**fields, "seconds": seconds}))
    else:
        stdout.print(f"{fields.get('detail', '')} [dim]({seconds} s)[/]", highlight=False)
    return ExitCode.OK


JSON = typer.Option(False, "--json", help="Print the result as JSON.")


@job_app.command("status")
def status(ctx: typer.Context, as_json: bool = JSON) -> int:
    """State, parallelism, uptime, restarts, last checkpoint and savepoint, per-partition lag, backpressure,
    records per second per operator, and the watermark's delay behind the clock. Exit 8 unless RUNNING."""
    settings, placement = _placement(ctx)
    names = StackNames.of(settings)
    report = job_report(placement, _endpoints(settings).kafka, settings.kafka.topic, names.job_group)
    if as_json:
        stdout.print_json(json.dumps(dataclasses.asdict(report)))
    else:
        colour = "green" if report.state == "RUNNING" else "red"
        stdout.print(f"job {report.name} [{colour}]{report.state}[/] {report.job_id}  parallelism "
                     f"{report.parallelism}, up {report.uptime_s:.0f} s, {report.restarts} restarts", highlight=False)
        cp = report.last_checkpoint
        if cp:
            stdout.print(f"last checkpoint #{cp['id']}: {cp['age_s']} s ago, {cp['size_bytes'] / 2**20:.1f} MiB,"
                         f" {cp['duration_ms']} ms", highlight=False)
        stdout.print(f"last savepoint: {report.last_savepoint or '-'}", highlight=False)
        if report.watermark_delay_s is not None:
            stdout.print(f"watermark: {report.watermark_delay_s} s behind the clock", highlight=False)
        if report.lag_s is not None:
            behind = " [bold red]falling behind[/]" if report.falling_behind else ""
            stdout.print(f"lag: {report.lag_s} s of ingest not read yet{behind}", highlight=False)
        table = Table(title="operators", title_justify="left")
        for column in ("operator", "parallelism", "in/s", "out/s", "backpressure"):
            table.add_column(column, overflow="fold")
        for v in report.vertices:
            table.add_row(v.name, str(v.parallelism), f"{v.records_in_per_s:,.1f}", f"{v.records_out_per_s:,.1f}",
                          v.backpressure)
        stdout.print(table)
        lag = ", ".join(f"p{p.partition} {p.lag:,}" for p in report.source_lag)
        stdout.print(f"source lag ({settings.kafka.topic}): {lag or '-'}", highlight=False)
    return ExitCode.OK if report.state == "RUNNING" else ExitCode.JOB_STATE


@job_app.command("savepoint")
def savepoint(ctx: typer.Context, as_json: bool = JSON) -> int:
    """Take a savepoint while the job runs; keeps flink.savepoints_kept of them, disposing of older ones."""
    started = time.monotonic()
    settings, placement = _placement(ctx)
    taken, disposed = operations.take_savepoint(placement, settings.flink.savepoints_kept)
    return _done(as_json, started, location=taken.location, disposed=disposed,
                 detail=f"savepoint {taken.location}" + (f"; disposed of {len(disposed)} older" if disposed else ""))


@job_app.command("savepoints")
def list_savepoints(ctx: typer.Context, as_json: bool = JSON) -> int:
    """The savepoints streamctl took and keeps, oldest first."""
    _, placement = _placement(ctx)
    kept = operations.savepoints(placement)
    if as_json:
        stdout.print_json(json.dumps([dataclasses.asdict(s) for s in kept]))
        return ExitCode.OK
    table = Table(title="savepoints", title_justify="left")
    for column in ("taken", "how", "job", "location"):
        table.add_column(column, overflow="fold")
    for s in kept:
        table.add_row(datetime.fromtimestamp(s.taken_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"), s.how,
                      s.job_id[:8], s.location)
    stdout.print(table)
    return ExitCode.OK


@job_app.command("stop")
def stop(ctx: typer.Context, drain: bool = typer.Option(False, "--drain", help="Flush all windows first (final)."),
         as_json: bool = JSON) -> int:
    """Stop with a savepoint; the producer API keeps accepting into Kafka, and `job resume` continues."""
    started = time.monotonic()
    settings, placement = _placement(ctx)
    taken = operations.stop(placement, settings.flink.savepoints_kept, drain)
    detail = f"stopped with savepoint {taken.location}" if taken else "not running; nothing to stop"
    return _done(as_json, started, location=taken.location if taken else None, detail=detail)


@job_app.command("resume")
def resume(ctx: typer.Context,
           source: str = typer.Option("latest", "--from", help="A savepoint or checkpoint path, or latest."),
           as_json: bool = JSON) -> int:
    """Submit the job from a savepoint or retained checkpoint (latest: the one `stop` or `down` left)."""
    started = time.monotonic()
    _, placement = _placement(ctx)
    return _done(as_json, started, detail=operations.resume(placement, source))


@job_app.command("rescale")
def rescale(ctx: typer.Context, parallelism: int = typer.Option(..., "--parallelism", "-p", min=1),
            as_json: bool = JSON) -> int:
    """Stop with a savepoint and resubmit at another parallelism (the TaskManagers must offer the slots)."""
    started = time.monotonic()
    settings, placement = _placement(ctx)
    detail = operations.rescale(placement, parallelism, settings.flink.savepoints_kept)
    return _done(as_json, started, parallelism=parallelism, detail=detail)


@job_app.command("upgrade")
def upgrade(ctx: typer.Context,
            replay: bool = typer.Option(False, "--replay", help="Recompute every window from the topic instead of"
                                                                 " restoring (for changes the state cannot take)."),
            as_json: bool = JSON) -> int:
    """Resubmit stack/flink/job.py and the current settings from a savepoint of the running job; refuse,
    naming them, changes its state cannot take (window size, dedup horizon, watermark delay, topic)."""
    started = time.monotonic()
    settings, placement = _placement(ctx)
    if replay:
        detail = operations.replay(placement, settings.flink.savepoints_kept, None, _eraser(settings),
                                   _retention(settings))
    else:
        detail = operations.upgrade(placement, settings.flink.savepoints_kept)
    return _done(as_json, started, detail=detail)


def _eraser(settings: Settings) -> Callable[[int | None], str]:
    endpoints = _endpoints(settings)

    def erase(from_ms: int | None) -> str:
        wait_until_indexed(endpoints.kafka, StackNames.of(settings).indexer_group, settings.kafka.aggregates_topic)
        return erase_windows(endpoints, settings.elasticsearch.index, from_ms)
    return erase


def _retention(settings: Settings) -> Callable[[], int | None]:
    return lambda: retained_from_ms(_endpoints(settings).kafka, settings.kafka.topic)


def parse_time(text: str) -> int:
    """ISO 8601 (UTC when no zone is given), or a duration ago (15m): epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return int((time.time() - parse_duration(text)) * 1000)
        except Exception:
            raise UsageError(f"--from {text!r} is neither a time (2026-11-26T10:15:00Z) nor a duration ago (15m)",
                             hint="give an ISO 8601 time or a duration like 15m") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


@job_app.command("replay")
def replay(ctx: typer.Context,
           since: Optional[str] = typer.Option(None, "--from", help="From this time on (ISO 8601, or 15m ago)."),
           everything: bool = typer.Option(False, "--all", help="The whole topic."),
           as_json: bool = JSON) -> int:
    """Recompute every window from a time on (or all) from the topic and overwrite both sinks there;
    windows before it are untouched. The replayed job then goes on as the stack's job."""
    if (since is None) == (not everything):
        raise UsageError("give one of --from TIME and --all", hint="streamctl job replay --from 15m")
    started = time.monotonic()
    settings, placement = _placement(ctx)
    detail = operations.replay(placement, settings.flink.savepoints_kept,
                               None if everything else parse_time(since or ""), _eraser(settings), _retention(settings))
    return _done(as_json, started, detail=detail)
