"""The local runtime: `up`, `down`, `status`, `logs` for the stack as processes of this machine."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import fcntl
import itertools
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from streamctl import provision
from streamctl.artifacts.fetch import Fetcher
from streamctl.artifacts.lock import read_lock
from streamctl.config import Settings, settings_yaml
from streamctl.errors import PreflightError, ServiceUnavailable, StartupError, StreamctlError
from streamctl.job import operations
from streamctl.job.placement import JobPlacement
from streamctl.kafka_info import lag_report
from streamctl.parallel import run_graph
from streamctl.paths import LOCK_FILE
from streamctl.runtimes.local import preflight, watchdog
from streamctl.runtimes.local.base import LocalContext, LocalService
from streamctl.runtimes.local.elasticsearch import Elasticsearch
from streamctl.runtimes.local.flink import FlinkCluster, FlinkJobManager, FlinkTaskManager, flink_home
from streamctl.runtimes.local.java import find_java
from streamctl.runtimes.local.kafka import Kafka
from streamctl.runtimes.local.postgres import Postgres, find_postgres_bin
from streamctl.runtimes.local.python_apps import Indexer, Producer
from streamctl.runtimes.local.supervisor import RunAs, Supervisor, group_pids, rss_bytes
from streamctl.runtimes.model import NO_PROGRESS, Progress, ServiceStatus, StackStatus, UpResult
from streamctl.secrets import Secrets
from streamctl.services import TASK, ServiceSpec, services_only, spec_ports, stack, stop_order

SERVICE_CLASSES: dict[str, type[LocalService]] = {
    cls.name: cls for cls in (Postgres, Kafka, Elasticsearch, FlinkJobManager, FlinkTaskManager, Producer, Indexer)
}


KAFKA_LAYOUT = "kafka-layout"  # what the stack's Kafka was formatted as; it cannot change in place


def kafka_layout(settings: Settings) -> str:
    return f"kafka.brokers {settings.kafka.brokers}, kafka.security {settings.kafka.security}"


@contextlib.contextmanager
def stack_lock(stack_dir: Path, wait: bool):
    """One `up` at a time per stack: the CLI's and the watchdog's must not start a service twice."""
    stack_dir.mkdir(parents=True, exist_ok=True)
    with (stack_dir / "up.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise watchdog.StackBusy() from None
        yield


class LocalRuntime:
    name = "local"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.stack_dir = settings.stack_dir
        self.supervisor = Supervisor(self.stack_dir / "run", self.stack_dir / "logs")
        self.specs = stack(settings)  # kafka-1..N, flink-taskmanager-1..N when the settings ask for several
        self.services = services_only(self.specs)

    # -- context -----------------------------------------------------------------------------------
    def _run_as(self) -> RunAs | None:
        return preflight.service_account(self.settings.service_user) if os.geteuid() == 0 else None

    def context(self, secrets: Secrets | None = None, run_as: RunAs | None = None) -> LocalContext:
        java = find_java(self.settings.java_home)
        secrets = secrets or Secrets.load(self.stack_dir) or Secrets(postgres_password="")
        return LocalContext(self.settings, java, secrets, run_as)

    def service(self, ctx: LocalContext, name: str) -> LocalService:
        spec = next(s for s in self.specs if s.name == name)
        return SERVICE_CLASSES[spec.runs_as](ctx, spec)

    # -- up ------------------------------------------------------------------------------------------
    def preflight(self, fetch: Callable[[], None] | None = None) -> RunAs | None:
        kafka = self.settings.kafka
        if kafka.replication() > kafka.brokers:
            raise PreflightError(f"kafka.replication_factor {kafka.replication()} needs as many brokers;"
                                 f" kafka.brokers is {kafka.brokers}", hint="raise kafka.brokers or lower the factor")
        made_as = self.stack_dir / KAFKA_LAYOUT
        if made_as.is_file() and made_as.read_text().strip() != kafka_layout(self.settings):
            # other node names and data directories, or no SCRAM user in the formatted metadata
            raise PreflightError(f"this stack's Kafka was made with {made_as.read_text().strip()}; the settings now"
                                 f" say {kafka_layout(self.settings)}",
                                 hint="set them back, or `streamctl down --purge` to start over with the new layout")
        find_java(self.settings.java_home)
        find_postgres_bin(self.settings.postgres.bin_dir)
        flink_home()
        running = {s.name for s in self.services if self.supervisor.record(s.name)}
        ports = [p for s in self.services if s.name not in running for p in spec_ports(self.settings, s)]
        preflight.check_ports(self.settings, ports)
        if not running:
            preflight.check_memory(self.settings)
        preflight.check_disk(self.stack_dir)
        if fetch is not None:
            fetch()
        return self._run_as()

    def up(self, progress: Progress = NO_PROGRESS, fetch: Callable[[], None] | None = None,
           restart: bool = False) -> UpResult:
        """Start what is not running. `restart`: the watchdog's call, which does not wait for another
        `up` (StackBusy) and does not start a second watchdog."""
        with stack_lock(self.stack_dir, wait=not restart):
            result = self._up(progress, fetch)
            if not restart:
                self._ensure_watchdog()
            return result

    def crashed(self) -> list[str]:
        """Services that are down without having been stopped on purpose."""
        return [s.name for s in self.services
                if self.supervisor.record(s.name) is None and not self.supervisor.held(s.name)]

    def _ensure_watchdog(self) -> None:
        if self.supervisor.record(watchdog.NAME) is not None:
            return
        snapshot = self.stack_dir / "settings.yaml"
        snapshot.write_text(settings_yaml(self.settings))
        self.supervisor.start(watchdog.NAME, [sys.executable, "-m", "streamctl.runtimes.local.watchdog",
                                              "--settings", str(snapshot)], dict(os.environ), self.stack_dir)

    def _up(self, progress: Progress, fetch: Callable[[], None] | None) -> UpResult:
        started_at = time.monotonic()
        run_as = self.preflight(fetch)
        self.stack_dir.mkdir(parents=True, exist_ok=True)
        (self.stack_dir / KAFKA_LAYOUT).write_text(kafka_layout(self.settings))
        if run_as is not None:
            self.stack_dir.chmod(0o755)  # the service account must reach its own directories
        ctx = self.context(Secrets.load_or_create(self.stack_dir), run_as)
        result = UpResult(seconds=0)
        if run_as is not None:
            result.notes.append(f"running as root: PostgreSQL and Elasticsearch run as the unprivileged "
                                f"account {run_as.name!r}")

        def step(spec: ServiceSpec) -> None:
            if spec.kind == TASK:
                progress.update(spec.name, "running")
                detail = self._run_task(ctx, spec.name, progress)
                progress.update(spec.name, "ready", detail)
                return
            already = self._start_service(ctx, spec.name, progress)
            (result.already_running if already else result.started).append(spec.name)

        outcome = run_graph(self.specs, step, lambda spec, root: progress.update(spec.name, "skipped",
                                                                            f"{root} failed"))
        if not outcome.ok:
            name, error = next(iter(outcome.failed.items()))
            if isinstance(error, StreamctlError):
                raise error
            raise StartupError(f"{name} failed: {type(error).__name__}: {error}",
                               hint=f"see `streamctl logs {name}`")
        result.seconds = time.monotonic() - started_at
        result.endpoints = self.endpoints(ctx)
        return result

    def _start_service(self, ctx: LocalContext, name: str, progress: Progress) -> bool:
        service = self.service(ctx, name)
        record = self.supervisor.record(name)
        already = record is not None
        if not already:
            progress.update(name, "preparing")
            service.prepare()
            launch = service.launch()
            progress.update(name, "starting")
            record = self.supervisor.start(name, launch.argv, launch.env, launch.cwd, launch.run_as)
        assert record is not None
        progress.update(name, "waiting", "already running" if already else "")
        deadline = time.monotonic() + service.start_timeout_s
        detail = ""
        while time.monotonic() < deadline:
            if self.supervisor.exited(record):
                self.supervisor.pid_file(name).unlink(missing_ok=True)
                progress.update(name, "failed", "exited")
                raise StartupError(f"{name} exited while starting", details=self.supervisor.tail(name, 15),
                                   hint=f"full log: {self.supervisor.log_file(name)}")
            ok, detail = service.ready()
            if ok:
                progress.update(name, "ready", ("already running; " if already else "") + detail)
                return already
            progress.update(name, "waiting", detail)
            time.sleep(0.5)
        progress.update(name, "failed", f"not ready after {service.start_timeout_s:.0f} s")
        raise StartupError(f"{name} was not ready after {service.start_timeout_s:.0f} s ({detail})",
                           details=self.supervisor.tail(name, 15), hint=f"see `streamctl logs {name}`")

    def _run_task(self, ctx: LocalContext, name: str, progress: Progress) -> str:
        s = self.settings
        if name == "topics":
            created = provision.create_topics(
                ctx.kafka, provision.topic_layout(s.kafka.topic, s.kafka.aggregates_topic, s.kafka.min_isr()),
                s.kafka.partitions, s.kafka.replication())
            return f"created {', '.join(created)}" if created else "present"
        if name == "schema":
            provision.apply_schema(Postgres(ctx).dsn(), s.postgres.database)
            return f"{s.postgres.database}.sales_summary ready"
        if name == "index-template":
            provision.install_index_template(ctx.endpoints.elasticsearch, s.elasticsearch.index)
            return f"{s.elasticsearch.index} ready"
        if name == "flink-job":
            return self._ensure_job(ctx, progress)
        raise StreamctlError(f"unknown task {name}")

    # -- the Flink job ---------------------------------------------------------------------------------
    def job_config(self, ctx: LocalContext) -> provision.JobConfig:
        return provision.JobConfig.of(self.settings, ctx.kafka, ctx.endpoints.postgres)

    def job_placement(self, ctx: LocalContext | None = None) -> JobPlacement:
        ctx = ctx or self.context()
        cluster = FlinkCluster(ctx)
        taskmanager = next(s.name for s in self.services if s.runs_as == "flink-taskmanager")
        return JobPlacement(cluster.rest_url, self.job_config(ctx), cluster, cluster.dir,
                            (cluster.dir / "savepoints").as_uri(), local_paths=True,
                            checkpoints_dir=cluster.dir / "checkpoints", log_file=self.supervisor.log_file("flink-job"),
                            failure_details=lambda: self.supervisor.tail(taskmanager, 15),
                            failure_hint=f"see `streamctl logs {taskmanager}`")

    def _ensure_job(self, ctx: LocalContext, progress: Progress) -> str:
        return operations.ensure_running(self.job_placement(ctx), progress)[1]

    # -- down ----------------------------------------------------------------------------------------
    def down(self, purge: bool = False, progress: Progress = NO_PROGRESS) -> list[tuple[str, str]]:
        results: list[tuple[str, str]] = []
        self.supervisor.stop(watchdog.NAME, timeout_s=15)  # first: it would restart what down stops
        if self._job_cluster_runs():
            results.append(("flink-job", self._savepoint_job(progress)))

        def stop(spec: ServiceSpec) -> tuple[str, str]:
            cls = SERVICE_CLASSES[spec.runs_as]
            progress.update(spec.name, "stopping")
            outcome = self.supervisor.stop(spec.name, cls.stop_signal, cls.stop_timeout_s)
            progress.update(spec.name, "stopped", outcome)
            return spec.name, outcome

        # Instances of one role stop together: the last KRaft node alone would wait for a quorum.
        for _, group in itertools.groupby([s for s in stop_order(self.specs) if s.kind != TASK],
                                          key=lambda spec: spec.runs_as):
            with concurrent.futures.ThreadPoolExecutor() as pool:
                results.extend(pool.map(stop, list(group)))
        if purge and self.stack_dir.exists():
            shutil.rmtree(self.stack_dir)
            results.append(("data", f"deleted {self.stack_dir}"))
        return results

    def _savepoint_job(self, progress: Progress) -> str:
        return operations.stop_for_down(self.job_placement, self.settings.flink.savepoints_kept, progress)

    def _job_cluster_runs(self) -> bool:
        return self.supervisor.record("flink-jobmanager") is not None

    def _kafka_runs(self) -> bool:
        return any(self.supervisor.record(s.name) for s in self.services if s.runs_as == "kafka")

    # -- status ----------------------------------------------------------------------------------------
    def status(self) -> StackStatus:
        ctx = self.context()
        services = []
        restarts = watchdog.read_restarts(self.supervisor.run_dir)
        for spec in self.services:
            service = self.service(ctx, spec.name)
            record = self.supervisor.record(spec.name)
            if record is None:
                services.append(ServiceStatus(spec.name, "stopped", False, "not running", endpoint=service.endpoint(),
                                              restarts=restarts.get(spec.name, 0)))
                continue
            try:
                ok, detail = service.ready()
            except Exception as exc:  # a status query must not crash on one odd service
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            services.append(ServiceStatus(spec.name, "running", ok, detail, record.pid,
                                          time.time() - record.started_at,
                                          sum(rss_bytes(p) for p in group_pids(record.pid) or [record.pid]),
                                          service.endpoint(), restarts.get(spec.name, 0)))
        job_state = self._job_state(ctx) if self._job_cluster_runs() else "STOPPED"
        return StackStatus(self.name, services, job_state, self._lags(ctx) if self._kafka_runs() else [])

    def _job_state(self, ctx: LocalContext) -> str:
        try:
            job = provision.find_job(ctx.endpoints.flink_url, provision.StackNames.of(self.settings).job_name)
        except (OSError, ValueError):
            return "UNREACHABLE"
        return job.state if job else "NOT SUBMITTED"

    def _lags(self, ctx: LocalContext) -> list[dict]:
        try:
            return [dataclasses.asdict(lag) for lag in lag_report(
                ctx.kafka, provision.StackNames.of(self.settings).lag_groups(self.settings))]
        except Exception as exc:  # status reports; it does not fail on a broker that is not answering
            return [{"error": f"{type(exc).__name__}: {exc}"}]

    def endpoints(self, ctx: LocalContext) -> dict[str, str]:
        return {
            "Flink UI": FlinkCluster(ctx).rest_url,
            "producer API": Producer(ctx).url,
            "Elasticsearch": Elasticsearch(ctx).url,
            "PostgreSQL": Postgres(ctx).endpoint(),
            "Kafka": ctx.kafka.describe(),
        }

    def log_path(self, name: str) -> Path:
        return self.supervisor.log_file(name)

    def log_names(self) -> list[str]:
        return [s.name for s in self.services] + ["flink-job"]

    def log_lines(self, name: str, tail: int, follow: bool) -> Iterator[str]:
        path = self.log_path(name)
        if not path.is_file():
            raise ServiceUnavailable(f"no log for {name} yet ({path})", hint="start the stack with `streamctl up`")
        with path.open("rb") as f:
            if tail > 0:
                yield from f.read().decode(errors="replace").splitlines()[-tail:]
            f.seek(0, 2)
            while follow:
                line = f.readline()
                if line:
                    yield line.decode(errors="replace").rstrip("\n")
                else:
                    time.sleep(0.3)


def fetch_missing(settings: Settings) -> None:
    """Download any locked artifact that is not yet in the cache (used by `up`)."""
    lock = read_lock(LOCK_FILE)
    report = Fetcher(settings.cache_dir, settings.maven_repository).fetch(lock.artifacts)
    if not report.ok:
        from streamctl.errors import ArtifactError

        artifact, error = report.failed[0]
        raise ArtifactError(f"could not fetch {artifact.coordinates}: {error}",
                            hint="run `streamctl fetch-connectors` for details")
