"""The docker runtime: `up`, `down`, `status`, `logs` for the stack as containers of stack/compose.yaml.

The engine brings the services up; then, from this machine, the Flink job is submitted to the
JobManager's published REST port and Kibana's saved objects are imported. Provisioning of topics,
table and index template runs inside the stack as the compose file's one-shot `init` service.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from streamctl import __version__, provision
from streamctl.config import Settings, env_name
from streamctl.endpoints import Endpoints, PostgresAccess
from streamctl.errors import PreflightError, ServiceUnavailable
from streamctl.job import operations
from streamctl.job.placement import JobPlacement
from streamctl.kafka_access import KafkaAccess
from streamctl.kafka_info import lag_report
from streamctl.paths import STACK_DIR
from streamctl.runtimes.docker import kibana
from streamctl.runtimes.docker.compose import COMPLETED, Project, load_project
from streamctl.runtimes.docker.contexts import stager
from streamctl.runtimes.docker.engine import Engine, connect
from streamctl.runtimes.flink_job import tail_file
from streamctl.runtimes.local.base import LocalContext
from streamctl.runtimes.local.flink import FlinkCluster, flink_home
from streamctl.runtimes.local.java import find_java
from streamctl.runtimes.local.preflight import port_free, port_holder
from streamctl.runtimes.model import NO_PROGRESS, Progress, ServiceStatus, StackStatus, UpResult
from streamctl.secrets import Secrets

SAVEPOINTS_IN_CLUSTER = Path("/flink-state/savepoints")
IMAGE_VARIABLES = {  # docker.images.<key> -> the compose file's variable
    "kafka": "KAFKA_IMAGE", "postgres": "POSTGRES_IMAGE", "elasticsearch": "ELASTICSEARCH_IMAGE",
    "kibana": "KIBANA_IMAGE", "kafka_ui": "KAFKA_UI_IMAGE", "flink_base": "FLINK_BASE_IMAGE",
    "python_base": "PYTHON_BASE_IMAGE",
}


def kafka_cluster_id(project: str) -> str:
    """KRaft wants a base64 UUID; one per project keeps a kept volume valid across `up`s. Never one
    starting with '-': image entrypoints pass it as `-t ID`, which would read as a flag."""
    for attempt in range(100):
        seed = f"streamctl:{project}" + (f":{attempt}" if attempt else "")
        cluster_id = base64.urlsafe_b64encode(uuid.uuid5(uuid.NAMESPACE_URL, seed).bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
    raise AssertionError("unreachable: 100 ids in a row started with '-'")


def flink_properties(settings: Settings) -> str:
    f = settings.flink
    return "\n".join(f"{key}: {value}" for key, value in {
        "jobmanager.rpc.address": "flink-jobmanager",
        "jobmanager.bind-host": "0.0.0.0",
        "taskmanager.bind-host": "0.0.0.0",
        "rest.address": "flink-jobmanager",
        "rest.bind-address": "0.0.0.0",
        "blob.server.port": 6124,
        "taskmanager.numberOfTaskSlots": f.parallelism,
        "parallelism.default": f.parallelism,
        "jobmanager.memory.process.size": f"{f.jobmanager_memory_mb}m",
        "taskmanager.memory.process.size": f"{f.taskmanager_memory_mb}m",
        "taskmanager.memory.managed.fraction": provision.TASKMANAGER_MANAGED_FRACTION,
        "state.checkpoints.dir": "file:///flink-state/checkpoints",
        "state.savepoints.dir": SAVEPOINTS_IN_CLUSTER.as_uri(),
        "state.checkpoints.num-retained": 2,
        "restart-strategy.type": "exponential-delay",
        "web.submit.enable": "false",
    }.items())


def compose_variables(settings: Settings, secrets: Secrets, project: str) -> dict[str, str]:
    s = settings
    advertised = Endpoints.of(settings).postgres_host
    variables = {
        "STREAMCTL_VERSION": __version__,
        "BIND_ADDRESS": s.bind_address,
        "ADVERTISED_HOST": advertised,
        "KAFKA_PORT": s.ports.kafka, "POSTGRES_PORT": s.ports.postgres, "ELASTICSEARCH_PORT": s.ports.elasticsearch,
        "FLINK_REST_PORT": s.ports.flink_rest, "PRODUCER_PORT": s.ports.producer, "KIBANA_PORT": s.ports.kibana,
        "KAFKA_UI_PORT": s.ports.kafka_ui,
        "KAFKA_CLUSTER_ID": kafka_cluster_id(project),
        "KAFKA_PARTITIONS": s.kafka.partitions, "KAFKA_HEAP_MB": s.kafka.heap_mb,
        "INDEXER_GROUP_ID": provision.StackNames.of(s).indexer_group,
        "KAFKA_TOPIC": s.kafka.topic, "AGGREGATES_TOPIC": s.kafka.aggregates_topic,
        "POSTGRES_USER": s.postgres.user, "POSTGRES_PASSWORD": secrets.postgres_password,
        "POSTGRES_DB": s.postgres.database,
        "ELASTICSEARCH_HEAP_MB": s.elasticsearch.heap_mb, "ELASTICSEARCH_INDEX": s.elasticsearch.index,
        "FLINK_PROPERTIES": flink_properties(settings),
        "PRODUCER_WORKERS": s.producer.workers, "PRODUCER_MAX_BODY_BYTES": s.producer.max_body_bytes,
        "PRODUCER_MAX_BATCH_RECORDS": s.producer.max_batch_records,
        "PRODUCER_HEARTBEAT_INTERVAL_MS": s.producer.heartbeat_interval_ms, "PRODUCER_LINGER_MS": s.producer.linger_ms,
    }
    for key, variable in IMAGE_VARIABLES.items():
        image = getattr(s.docker.images, key)
        if image:
            variables[variable] = image
    return {k: str(v) for k, v in variables.items()}


class DockerRuntime:
    name = "docker"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.stack_dir = settings.stack_dir

    @property
    def project_name(self) -> str:
        return self.settings.docker.project or f"streamctl-{self.settings.stack_name}"

    @property
    def compose_file(self) -> Path:
        return Path(self.settings.docker.compose_file) if self.settings.docker.compose_file else STACK_DIR / "compose.yaml"

    @property
    def job_log(self) -> Path:
        return self.stack_dir / "logs" / "flink-job.log"

    def project(self, secrets: Secrets | None = None) -> Project:
        secrets = secrets or Secrets.load(self.stack_dir) or Secrets(postgres_password="")
        # The shell's variables count too (as in Compose), but streamctl's own settings win.
        variables = {**os.environ, **compose_variables(self.settings, secrets, self.project_name)}
        return load_project(self.compose_file, variables, self.project_name, self.settings.docker.disabled())

    def engine(self, client, project: Project) -> Engine:
        return Engine(client, project, self.stack_dir / "docker", stager(self.settings.cache_dir),
                      float(self.settings.docker.wait_s))

    def _context(self, secrets: Secrets) -> LocalContext:
        return LocalContext(self.settings, find_java(self.settings.java_home), secrets, None)

    # -- up -------------------------------------------------------------------------------------------
    def _refuse_local_only_settings(self) -> None:
        s = self.settings
        for key, value, default in (("kafka.brokers", s.kafka.brokers, 1), ("flink.taskmanagers", s.flink.taskmanagers, 1),
                                    ("kafka.security", s.kafka.security, "plaintext")):
            if value != default:
                raise PreflightError(f"{key} {value} is for the local runtime; the compose file runs one broker,"
                                     " one TaskManager, plaintext", hint=f"use --runtime local, or unset {key}")

    def up(self, progress: Progress = NO_PROGRESS, fetch: Callable[[], None] | None = None) -> UpResult:
        started_at = time.monotonic()
        self._refuse_local_only_settings()
        client = connect()
        find_java(self.settings.java_home)  # the job is compiled and submitted from this machine
        flink_home()
        self.stack_dir.mkdir(parents=True, exist_ok=True)
        secrets = Secrets.load_or_create(self.stack_dir)
        project = self.project(secrets)
        engine = self.engine(client, project)
        self._check_ports(project, engine)
        if fetch is not None:
            fetch()
        report = engine.up(progress)
        ctx = self._context(secrets)
        progress.update("flink-job", "running")
        progress.update("flink-job", "ready", self._ensure_job(ctx, progress))
        notes = []
        if "kibana" in project.services:
            progress.update("kibana-objects", "importing")
            progress.update("kibana-objects", "ready", kibana.import_saved_objects(self.kibana_url))
        else:
            notes.append("Kibana is not part of this stack (docker.disabled_services): no dashboard")
        result = UpResult(seconds=time.monotonic() - started_at, notes=notes)
        for outcome in report.outcomes.values():
            (result.already_running if outcome.action == "unchanged" else result.started).append(outcome.name)
        if report.built:
            notes.append(f"built {', '.join(report.built)}")
        result.endpoints = self.endpoints(project)
        return result

    def _check_ports(self, project: Project, engine: Engine) -> None:
        running = {name for name, c in engine.containers().items() if c.state == "running"}
        by_port = {port: name for name, port in dataclasses.asdict(self.settings.ports).items()}
        for service in project.services.values():
            if service.name in running:
                continue
            for port in service.ports:
                if port.host_port is None or port_free(port.host_ip or "0.0.0.0", port.host_port):
                    continue
                holder = port_holder(port.host_port)
                held = f" held by pid {holder.pid} ({holder.command})" if holder else ""
                setting = by_port.get(port.host_port)
                raise PreflightError(
                    f"{service.name}: port {port.host_port} is already in use{held}",
                    hint=f"stop that process, or choose another port: ports.{setting} ({env_name('ports.' + setting)})"
                    if setting else "stop that process or change the port mapping")

    @property
    def kibana_url(self) -> str:
        return f"http://{Endpoints.of(self.settings).postgres_host}:{self.settings.ports.kibana}"

    def job_config(self, ctx: LocalContext) -> provision.JobConfig:
        # The in-network view: the job runs in the containers' network.
        in_network = PostgresAccess("postgres", 5432, self.settings.postgres.user, ctx.secrets.postgres_password,
                                    self.settings.postgres.database)
        return provision.JobConfig.of(self.settings, KafkaAccess("kafka:19092"), in_network)

    def job_placement(self, ctx: LocalContext | None = None) -> JobPlacement:
        ctx = ctx or self._context(Secrets.load(self.stack_dir) or Secrets(postgres_password=""))
        client = FlinkCluster(ctx)  # the client's conf/ and lib/ (with the connectors) on this machine
        client.prepare()
        return JobPlacement(Endpoints.of(self.settings).flink_url, self.job_config(ctx), client,
                            self.stack_dir / "flink", SAVEPOINTS_IN_CLUSTER.as_uri(), log_file=self.job_log,
                            failure_details=lambda: "\n".join(self.log_lines("flink-taskmanager", 15, False)),
                            failure_hint="see `streamctl logs flink-taskmanager`")

    def _ensure_job(self, ctx: LocalContext, progress: Progress) -> str:
        return operations.ensure_running(self.job_placement(ctx), progress)[1]

    # -- down -----------------------------------------------------------------------------------------
    def down(self, purge: bool = False, progress: Progress = NO_PROGRESS) -> list[tuple[str, str]]:
        client = connect()
        engine = Engine(client, Project(self.project_name, {}), self.stack_dir / "docker")
        results = []
        jobmanager = engine.containers().get("flink-jobmanager")
        if jobmanager is not None and jobmanager.state == "running":
            results.append(("flink-job", self._savepoint_job(progress)))
        results += engine.down(purge, progress)
        if purge and self.stack_dir.exists():
            shutil.rmtree(self.stack_dir)
            results.append(("data", f"deleted {self.stack_dir}"))
        return results

    def _savepoint_job(self, progress: Progress) -> str:
        return operations.stop_for_down(self.job_placement, self.settings.flink.savepoints_kept, progress)

    # -- status ---------------------------------------------------------------------------------------
    def status(self) -> StackStatus:
        client = connect()
        project = self.project()
        engine = self.engine(client, project)
        required = {name: project.required_state(name) for name in project.services}
        services = []
        for name in project.start_order():
            info = engine.inspect(name)
            endpoint = ", ".join(f"{p.host_ip or '0.0.0.0'}:{p.host_port}" for p in project.services[name].ports)
            if info is None:
                services.append(ServiceStatus(name, "absent", False, "no container", endpoint=endpoint))
                continue
            state = info["State"]
            health = (state.get("Health") or {}).get("Status", "")
            if required[name] == COMPLETED:
                ok = state["Status"] == "exited" and state["ExitCode"] == 0
                detail = f"exited {state['ExitCode']}" if state["Status"] == "exited" else state["Status"]
            else:
                ok = state["Running"] and health in ("", "healthy")
                detail = health or state["Status"]
            uptime = None
            if state["Running"]:
                started = datetime.fromisoformat(state["StartedAt"][:26].rstrip("Z") + "+00:00")
                uptime = time.time() - started.timestamp()
            services.append(ServiceStatus(name, state["Status"], ok, detail, state.get("Pid") or None, uptime,
                                          self._memory(client, info) if state["Running"] else 0, endpoint,
                                          int(info.get("RestartCount", 0))))
        endpoints = Endpoints.of(self.settings)
        try:
            job = provision.find_job(endpoints.flink_url, provision.StackNames.of(self.settings).job_name)
            job_state = job.state if job else "NOT SUBMITTED"
        except (OSError, ValueError):
            job_state = "UNREACHABLE"
        lags = []
        try:
            lags = [dataclasses.asdict(lag) for lag in lag_report(
                endpoints.kafka, provision.StackNames.of(self.settings).lag_groups(self.settings))]
        except Exception as exc:  # status reports; it does not fail on a broker that is not answering
            lags = [{"error": f"{type(exc).__name__}: {exc}"}]
        return StackStatus(self.name, services, job_state, lags)

    @staticmethod
    def _memory(client, info: dict) -> int:
        try:
            stats = client.api.stats(info["Id"], stream=False, one_shot=True)
            return int(stats.get("memory_stats", {}).get("usage", 0))
        except Exception:  # memory is informative; a container stopping meanwhile is not an error
            return 0

    def endpoints(self, project: Project) -> dict[str, str]:
        e = Endpoints.of(self.settings)
        found = {"Flink UI": e.flink_url, "producer API": e.producer_url, "Elasticsearch": e.elasticsearch_url,
                 "PostgreSQL": f"{e.postgres_host}:{e.postgres_port}", "Kafka": e.kafka_bootstrap}
        if "kibana" in project.services:
            found["Kibana"] = self.kibana_url
        if "kafka-ui" in project.services:
            found["Kafka UI"] = f"http://{e.postgres_host}:{self.settings.ports.kafka_ui}"
        return found

    # -- logs -----------------------------------------------------------------------------------------
    def log_names(self) -> list[str]:
        return list(self.project().services) + ["flink-job"]

    def log_lines(self, name: str, tail: int, follow: bool) -> Iterator[str]:
        if name == "flink-job":
            if not self.job_log.is_file():
                raise ServiceUnavailable(f"no log for flink-job yet ({self.job_log})", hint="start the stack with `streamctl up`")
            yield from tail_file(self.job_log, tail).splitlines()
            return
        engine = Engine(connect(), Project(self.project_name, {}), self.stack_dir / "docker")
        yield from engine.logs(name, tail, follow)
