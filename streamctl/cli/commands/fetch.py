from __future__ import annotations

import threading

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from streamctl.artifacts.fetch import Fetcher, FetchReport
from streamctl.artifacts.lock import Artifact, read_lock
from streamctl.cli.app import app, stderr, stdout
from streamctl.errors import ArtifactError
from streamctl.exit_codes import ExitCode
from streamctl.paths import LOCK_FILE


class RichFetchProgress:
    """One bar per file in flight plus a total bar."""

    def __init__(self, progress: Progress, total_bytes: int):
        self._progress = progress
        self._total = progress.add_task("[bold]total", total=total_bytes)
        self._tasks: dict[Artifact, TaskID] = {}
        self._lock = threading.Lock()

    def begin(self, artifact: Artifact) -> None:
        with self._lock:
            self._tasks[artifact] = self._progress.add_task(artifact.file_name, total=artifact.size)

    def advance(self, artifact: Artifact, nbytes: int) -> None:
        self._progress.advance(self._tasks[artifact], nbytes)
        self._progress.advance(self._total, nbytes)

    def end(self, artifact: Artifact, outcome: str) -> None:
        task = self._tasks[artifact]
        if outcome == "cached":
            self._progress.advance(self._total, artifact.size)
        self._progress.remove_task(task)


def fetch_artifacts(repository: str, cache_dir, offline: bool, show_progress: bool = True) -> FetchReport:
    """Fetch every locked artifact; shared by `fetch-connectors` and `up` (which fetches what is missing)."""
    lock = read_lock(LOCK_FILE)
    with Progress(
        TextColumn("{task.description}", justify="left"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=stderr, transient=True, disable=not show_progress,
    ) as progress:
        fetcher = Fetcher(cache_dir=cache_dir, repository=repository,
                          progress=RichFetchProgress(progress, lock.total_size))
        report = fetcher.fetch(lock.artifacts, offline=offline)
    for corrupt in report.corrupt:
        stderr.print(
            f"[bold red]checksum mismatch[/] in {corrupt.where}: {corrupt.artifact.file_name}\n"
            f"  expected sha256 {corrupt.expected}\n  actual   sha256 {corrupt.actual}\n"
            f"  {'deleted and downloaded again' if corrupt.where == 'cache' else 'deleted'}",
            highlight=False, soft_wrap=True,
        )
    for artifact, error in report.failed:
        stderr.print(f"[bold red]failed[/] {artifact.coordinates}: {error}", highlight=False, soft_wrap=True)
    if not report.ok:
        hint = ("run without --offline to download the missing files" if offline
                else "check the network or the repository URL (maven_repository), then run it again")
        raise ArtifactError(f"{len(report.failed)} of {len(lock.artifacts)} artifacts could not be fetched", hint=hint)
    return report


@app.command("fetch-connectors")
def fetch_connectors(
    ctx: typer.Context,
    offline: bool = typer.Option(False, "--offline", help="Only verify the cache; never touch the network."),
    repository: str = typer.Option(None, "--repository", help="Maven repository URL (a mirror); default: Maven Central."),
    cache_dir: str = typer.Option(None, "--cache-dir", help="Artifact cache directory."),
) -> int:
    """Download and verify every artifact in connectors.lock (Flink connectors, Kafka, Elasticsearch)."""
    settings = ctx.obj.settings(maven_repository=repository, cache_dir=cache_dir)
    report = fetch_artifacts(settings.maven_repository, settings.cache_dir, offline)
    megabytes = report.downloaded_bytes / 1e6
    stdout.print(
        f"[green]ok[/] {len(report.cached) + len(report.downloaded)} artifacts verified in {settings.cache_dir} "
        f"({len(report.downloaded)} downloaded, {megabytes:.1f} MB; {len(report.cached)} already cached) "
        f"in {report.seconds:.1f} s",
        highlight=False, soft_wrap=True,
    )
    return ExitCode.OK
