"""The local runtime: `up`, `down`, `status`, `logs` for the stack as processes of this machine."""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import pkgutil
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from streamctl.config import Settings, settings_yaml
from streamctl.endpoints import Endpoints
from streamctl.errors import PreflightError, ServiceUnavailable, StartupError
from streamctl.flink.cluster import FlinkCluster, flink_home
from streamctl.flink.config import JobConfig
from streamctl.flink.placement import JobPlacement
from streamctl.machine import preflight
from streamctl.machine.context import LocalContext
from streamctl.machine.java import find_java
from streamctl.machine.supervisor import RunAs, Supervisor, group_pids, rss_bytes
from streamctl.runtimes.local import watchdog
from streamctl.runtimes.local.base import LocalService
from streamctl.runtimes.local.postgres import find_postgres_bin
from streamctl.runtimes.model import NO_PROGRESS, Progress, ServiceStatus
from streamctl.secrets import Secrets
from streamctl.services import ServiceSpec, services_only
from streamctl.topology import spec_ports, stack


def local_service_classes(package: str = __name__.rpartition(".")[0]) -> dict[str, type[LocalService]]:
    """The class that runs each role as a local process, found rather than listed: every LocalService
    with a name defined in a module of this package. A new service's class is a new module here.
    Two classes for one role are an error (tests/unit/test_local_classes.py holds these to the model)."""
    found: dict[str, type[LocalService]] = {}
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        for cls in vars(module).values():
            if not (isinstance(cls, type) and issubclass(cls, LocalService) and vars(cls).get("name")
                    and cls.__module__ == module.__name__):  # a subclass that inherits its name runs no new role
                continue
            if cls.name in found:
                raise TypeError(f"two local classes run {cls.name}: {found[cls.name].__qualname__} and {cls.__qualname__}")
            found[cls.name] = cls
    return found


SERVICE_CLASSES = local_service_classes()


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
    """The stack as processes of this machine, supervised, with a watchdog as restart policy."""

    name = "local"
    owns_clusters = True

    def __init__(self, settings: Settings):
        self.settings = settings
        self.stack_dir = settings.stack_dir
        self.supervisor = Supervisor(self.stack_dir / "run", self.stack_dir / "logs")
        self.specs = stack(settings)  # kafka-1..N, flink-taskmanager-1..N when the settings ask for several
        self.services = services_only(self.specs)
        self._ctx: LocalContext | None = None

    # -- context -----------------------------------------------------------------------------------
    def _run_as(self) -> RunAs | None:
        return preflight.service_account(self.settings.service_user) if os.geteuid() == 0 else None

    def context(self) -> LocalContext:
        """What the services share: Java, the secrets, the service account (set by preflight on `up`)."""
        if self._ctx is None:
            java = find_java(self.settings.java_home)
            self._ctx = LocalContext(self.settings, java, Secrets.load(self.stack_dir) or Secrets(postgres_password=""),
                                     None)
        return self._ctx

    def service(self, name: str) -> LocalService:
        spec = next(s for s in self.specs if s.name == name)
        return SERVICE_CLASSES[spec.runs_as](self.context(), spec)

    def endpoints(self) -> Endpoints:
        return self.context().endpoints

    # -- up ------------------------------------------------------------------------------------------
    def exclusive(self, wait: bool = True):
        """One `up` at a time per stack; wait=False raises StackBusy instead of waiting (the watchdog)."""
        return stack_lock(self.stack_dir, wait=wait)

    def preflight(self, fetch: Callable[[], None] | None, progress: Progress = NO_PROGRESS) -> list[str]:
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
        java = find_java(self.settings.java_home)
        find_postgres_bin(self.settings.postgres.bin_dir)
        flink_home()
        if not self.check_free_ports():
            preflight.check_memory(self.settings)
        preflight.check_disk(self.stack_dir)
        if fetch is not None:
            fetch()
        run_as = self._run_as()
        self.stack_dir.mkdir(parents=True, exist_ok=True)
        made_as.write_text(kafka_layout(self.settings))
        notes = []
        if run_as is not None:
            self.stack_dir.chmod(0o755)  # the service account must reach its own directories
            notes.append(f"running as root: PostgreSQL and Elasticsearch run as the unprivileged account {run_as.name!r}")
        self._ctx = LocalContext(self.settings, java, Secrets.load_or_create(self.stack_dir), run_as)
        return notes

    def check_free_ports(self) -> set[str]:
        """Every port of a service that is not running must be free. Returns the running ones."""
        running = {s.name for s in self.services if self.supervisor.record(s.name)}
        preflight.check_ports(self.settings, [p for s in self.services if s.name not in running
                                              for p in spec_ports(self.settings, s)])
        return running

    def after_up(self) -> None:
        self._ensure_watchdog()

    def crashed(self) -> list[str]:
        """Services that are down without having been stopped on purpose."""
        return [s.name for s in self.services
                if self.supervisor.record(s.name) is None and not self.supervisor.held(s.name)]

    def _ensure_watchdog(self) -> None:
        if self.supervisor.record(watchdog.NAME) is not None:
            return
        snapshot = self.stack_dir / "settings.yaml"
        snapshot.write_text(settings_yaml(self.settings))
        self.supervisor.start(watchdog.NAME, [sys.executable, "-m", "streamctl.watchdog",
                                              "--settings", str(snapshot)], dict(os.environ), self.stack_dir)

    def start(self, spec: ServiceSpec, progress: Progress = NO_PROGRESS) -> bool:
        name = spec.name
        service = self.service(name)
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

    def topic_replication(self) -> tuple[int, int]:
        return self.settings.kafka.replication(), self.settings.kafka.min_isr()

    # -- the Flink job ---------------------------------------------------------------------------------
    def job_config(self, ctx: LocalContext) -> JobConfig:
        return JobConfig.of(self.settings, ctx.kafka, ctx.endpoints.postgres)

    def job_placement(self) -> JobPlacement:
        ctx = self.context()
        cluster = FlinkCluster(ctx)
        taskmanager = next(s.name for s in self.services if s.runs_as == "flink-taskmanager")
        return JobPlacement(cluster.rest_url, self.job_config(ctx), cluster, cluster.dir,
                            (cluster.dir / "savepoints").as_uri(), local_paths=True,
                            checkpoints_dir=cluster.dir / "checkpoints", log_file=self.supervisor.log_file("flink-job"),
                            failure_details=lambda: self.supervisor.tail(taskmanager, 15),
                            failure_hint=f"see `streamctl logs {taskmanager}`")

    def running(self, role: str) -> bool:
        return any(self.supervisor.record(s.name) for s in self.services if s.runs_as == role)

    # -- down ----------------------------------------------------------------------------------------
    def before_down(self, purge: bool) -> None:
        self.supervisor.stop(watchdog.NAME, timeout_s=15)  # first: it would restart what down stops

    def stop(self, spec: ServiceSpec, progress: Progress = NO_PROGRESS) -> str:
        cls = SERVICE_CLASSES[spec.runs_as]
        return self.supervisor.stop(spec.name, cls.stop_signal, cls.stop_timeout_s)

    def release(self, purge: bool, progress: Progress = NO_PROGRESS) -> list[tuple[str, str]]:
        if purge and self.stack_dir.exists():
            shutil.rmtree(self.stack_dir)
            return [("data", f"deleted {self.stack_dir}")]
        return []

    # -- status ----------------------------------------------------------------------------------------
    def inspect(self, spec: ServiceSpec) -> ServiceStatus:
        service = self.service(spec.name)
        restarts = watchdog.read_restarts(self.supervisor.run_dir).get(spec.name, 0)
        record = self.supervisor.record(spec.name)
        if record is None:
            return ServiceStatus(spec.name, "stopped", False, "not running", endpoint=service.endpoint(),
                                 restarts=restarts)
        try:
            ok, detail = service.ready()
        except Exception as exc:  # a status query must not crash on one odd service
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        return ServiceStatus(spec.name, "running", ok, detail, record.pid, time.time() - record.started_at,
                             sum(rss_bytes(p) for p in group_pids(record.pid) or [record.pid]),
                             service.endpoint(), restarts)

    def addresses(self) -> dict[str, str]:
        return self.endpoints().addresses(s.name for s in self.specs)

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
