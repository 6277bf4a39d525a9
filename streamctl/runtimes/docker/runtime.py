"""The docker runtime: `up`, `down`, `status`, `logs` for the stack as containers of stack/compose.yaml.

Each service starts when `streamctl.lifecycle` reaches it in the stack model's order; the
provisioning steps and the Flink job's submission run from this machine through the published
ports, by the same code as on the other runtimes.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from streamctl import __version__
from streamctl.config import Settings, env_name
from streamctl.endpoints import Endpoints, PostgresAccess
from streamctl.errors import PreflightError, ServiceUnavailable
from streamctl.flink.cluster import FlinkCluster, flink_home
from streamctl.flink.config import METRICS_FETCH_INTERVAL_MS, TASKMANAGER_MANAGED_FRACTION, JobConfig
from streamctl.flink.placement import JobPlacement
from streamctl.flink.submit import tail_file
from streamctl.kafka_access import KafkaAccess
from streamctl.machine.context import LocalContext
from streamctl.machine.java import find_java
from streamctl.machine.preflight import port_free, port_holder
from streamctl.names import StackNames
from streamctl.net import host_port
from streamctl.paths import STACK_DIR
from streamctl.runtimes.docker.compose import Project, load_project, with_stack_model
from streamctl.runtimes.docker.contexts import stager
from streamctl.runtimes.docker.engine import Engine, connect
from streamctl.runtimes.model import NO_PROGRESS, Progress, ServiceStatus
from streamctl.secrets import Secrets
from streamctl.services import ServiceSpec, image_keys, in_network, services_only
from streamctl.topology import spec_ports, stack

SAVEPOINTS_IN_CLUSTER = Path("/flink-state/savepoints")
# docker.images.<key> (the model's ServiceSpec.image) -> the compose file's variable <KEY>_IMAGE
IMAGE_VARIABLES = {key: f"{key.upper()}_IMAGE" for key in image_keys()}


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
        "taskmanager.memory.managed.fraction": TASKMANAGER_MANAGED_FRACTION,
        "metrics.fetcher.update-interval": METRICS_FETCH_INTERVAL_MS,
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
        "ADVERTISED_HOST": advertised,
        "KAFKA_PORT": s.ports.kafka,
        "KAFKA_CLUSTER_ID": kafka_cluster_id(project),
        "KAFKA_PARTITIONS": s.kafka.partitions, "KAFKA_HEAP_MB": s.kafka.heap_mb,
        "INDEXER_GROUP_ID": StackNames.of(s).indexer_group,
        "KAFKA_TOPIC": s.kafka.topic, "AGGREGATES_TOPIC": s.kafka.aggregates_topic,
        "POSTGRES_USER": s.postgres.user, "POSTGRES_PASSWORD": secrets.postgres_password,
        "POSTGRES_DB": s.postgres.database,
        "ELASTICSEARCH_HEAP_MB": s.elasticsearch.heap(with_kibana=True), "ELASTICSEARCH_INDEX": s.elasticsearch.index,
        "FLINK_PROPERTIES": flink_properties(settings), "FLINK_PARALLELISM": s.flink.parallelism,
        "PRODUCER_WORKERS": s.producer.workers, "PRODUCER_MAX_BODY_BYTES": s.producer.max_body_bytes,
        "PRODUCER_MAX_BATCH_RECORDS": s.producer.max_batch_records,
        "PRODUCER_HEARTBEAT_INTERVAL_MS": s.producer.heartbeat_interval_ms, "PRODUCER_LINGER_MS": s.producer.linger_ms,
        "PRODUCER_MAX_LAG_SECONDS": s.producer.max_lag_seconds, "JOB_NAME": StackNames.of(s).job_name,
        "WATERMARK_DELAY_MS": s.flink.watermark_delay_seconds * 1000,
    }
    for key, variable in IMAGE_VARIABLES.items():
        image = getattr(s.docker.images, key)
        if image:
            variables[variable] = image
    return {k: str(v) for k, v in variables.items()}


class DockerRuntime:
    """The stack as containers: the compose file says what each container is, the stack model what
    the stack is (ports, dependencies); streamctl's own engine applies them through the Docker SDK."""

    name = "docker"
    owns_clusters = True

    def __init__(self, settings: Settings):
        self.settings = settings
        self.stack_dir = settings.stack_dir
        self.specs = stack(settings, runtime="docker")
        self._engine: Engine | None = None
        self._by_labels: Engine | None = None
        self._secrets: Secrets | None = None

    @property
    def project_name(self) -> str:
        return self.settings.docker.project or f"streamctl-{self.settings.stack_name}"

    @property
    def compose_file(self) -> Path:
        return Path(self.settings.docker.compose_file) if self.settings.docker.compose_file else STACK_DIR / "compose.yaml"

    @property
    def job_log(self) -> Path:
        return self.stack_dir / "logs" / "flink-job.log"

    def secrets(self) -> Secrets:
        if self._secrets is None:
            self._secrets = Secrets.load(self.stack_dir) or Secrets(postgres_password="")
        return self._secrets

    def project(self, secrets: Secrets | None = None) -> Project:
        secrets = secrets or self.secrets()
        # The shell's variables count too (as in Compose), but streamctl's own settings win.
        variables = {**os.environ, **compose_variables(self.settings, secrets, self.project_name)}
        containers = load_project(self.compose_file, variables, self.project_name, self.settings.docker.disabled())
        published = {s.name: [port for _, port in spec_ports(self.settings, s)] for s in services_only(self.specs)}
        return with_stack_model(containers, self.specs, published, self.settings.bind_address)

    def engine(self) -> Engine:
        """The engine for this stack's project (connects on first use)."""
        if self._engine is None:
            self._engine = Engine(connect(), self.project(), self.stack_dir / "docker", stager(self.settings.cache_dir),
                                  float(self.settings.docker.wait_s))
        return self._engine

    def _labelled(self) -> Engine:
        """An engine that knows the project by its labels only: `down` and `logs` need no compose file."""
        if self._by_labels is None:
            self._by_labels = Engine(connect(), Project(self.project_name, {}), self.stack_dir / "docker")
        return self._by_labels

    def _context(self) -> LocalContext:
        return LocalContext(self.settings, find_java(self.settings.java_home), self.secrets(), None)

    def endpoints(self) -> Endpoints:
        return Endpoints.of(self.settings, self.secrets())

    # -- up -------------------------------------------------------------------------------------------
    def _refuse_local_only_settings(self) -> None:
        s = self.settings
        for key, value, default in (("kafka.brokers", s.kafka.brokers, 1), ("flink.taskmanagers", s.flink.taskmanagers, 1),
                                    ("kafka.security", s.kafka.security, "plaintext")):
            if value != default:
                raise PreflightError(f"{key} {value} is for the local runtime; the compose file runs one broker,"
                                     " one TaskManager, plaintext", hint=f"use --runtime local, or unset {key}")

    def exclusive(self):
        return contextlib.nullcontext()  # the engine's state is the containers' labels: a second `up` finds them

    def preflight(self, fetch: Callable[[], None] | None, progress: Progress = NO_PROGRESS) -> list[str]:
        self._refuse_local_only_settings()
        connect()
        find_java(self.settings.java_home)  # the job is compiled and submitted from this machine
        flink_home()
        self.stack_dir.mkdir(parents=True, exist_ok=True)
        self._secrets = Secrets.load_or_create(self.stack_dir)
        engine = self.engine()
        self._check_ports(engine)
        if fetch is not None:
            fetch()
        built = engine.prepare(progress)  # images (built here), the network, the volumes
        notes = [f"built {', '.join(built)}"] if built else []
        if "kibana" not in engine.project.services:
            notes.append("Kibana is not part of this stack (docker.disabled_services): no dashboard")
        return notes

    def start(self, spec: ServiceSpec, progress: Progress = NO_PROGRESS) -> bool:
        return self.engine().start_service(spec.name, progress).action == "unchanged"

    def after_up(self) -> None:
        """Nothing: each container's restart policy (`restart: unless-stopped`) is the engine's."""

    def topic_replication(self) -> tuple[int, int]:
        return 1, 1  # one broker (refused otherwise in preflight)

    def _check_ports(self, engine: Engine) -> None:
        running = {name for name, c in engine.containers().items() if c.state == "running"}
        by_port = {port: name for name, port in self.settings.ports.items()}
        for service in engine.project.services.values():
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
        return Endpoints.of(self.settings).kibana_url

    def job_config(self, ctx: LocalContext) -> JobConfig:
        # The in-network view: the job runs in the containers' network.
        postgres = PostgresAccess(*in_network("postgres"), self.settings.postgres.user, ctx.secrets.postgres_password,
                                  self.settings.postgres.database)
        return JobConfig.of(self.settings, KafkaAccess(host_port(*in_network("kafka"))), postgres)

    def job_placement(self) -> JobPlacement:
        ctx = self._context()
        client = FlinkCluster(ctx)  # the client's conf/ and lib/ (with the connectors) on this machine
        client.prepare()
        return JobPlacement(self.endpoints().flink_url, self.job_config(ctx), client,
                            self.stack_dir / "flink", SAVEPOINTS_IN_CLUSTER.as_uri(), log_file=self.job_log,
                            failure_details=lambda: "\n".join(self.log_lines("flink-taskmanager", 15, False)),
                            failure_hint="see `streamctl logs flink-taskmanager`")

    def running(self, role: str) -> bool:
        info = self._labelled().containers().get(role)  # one container per role: the compose file scales nothing
        return info is not None and info.state == "running"

    # -- down -----------------------------------------------------------------------------------------
    def before_down(self, purge: bool) -> None:
        connect()  # no engine: one clear error before anything else

    def stop(self, spec: ServiceSpec, progress: Progress = NO_PROGRESS) -> str:
        return self._labelled().stop_service(spec.name)

    def release(self, purge: bool, progress: Progress = NO_PROGRESS) -> list[tuple[str, str]]:
        """Containers the model does not name (left out since, or from an older version), the network,
        and with `purge` the volumes and the state directory."""
        results = self._labelled().down(purge, progress)
        if purge and self.stack_dir.exists():
            shutil.rmtree(self.stack_dir)
            results.append(("data", f"deleted {self.stack_dir}"))
        return results

    # -- status ---------------------------------------------------------------------------------------
    def inspect(self, spec: ServiceSpec) -> ServiceStatus:
        engine = self._labelled()
        endpoint = ", ".join(host_port(self.settings.bind_address, port) for (_, port), p in
                             zip(spec_ports(self.settings, spec), spec.ports, strict=True) if p.in_network)
        info = engine.inspect(spec.name)
        if info is None:
            return ServiceStatus(spec.name, "absent", False, "no container", endpoint=endpoint)
        state = info["State"]
        health = (state.get("Health") or {}).get("Status", "")
        ok = state["Running"] and health in ("", "healthy")
        uptime = None
        if state["Running"]:
            started = datetime.fromisoformat(state["StartedAt"][:26].rstrip("Z") + "+00:00")
            uptime = time.time() - started.timestamp()
        return ServiceStatus(spec.name, state["Status"], ok, health or state["Status"], state.get("Pid") or None, uptime,
                             self._memory(engine.client, info) if state["Running"] else 0, endpoint,
                             int(info.get("RestartCount", 0)))

    @staticmethod
    def _memory(client, info: dict) -> int:
        try:
            stats = client.api.stats(info["Id"], stream=False, one_shot=True)
            return int(stats.get("memory_stats", {}).get("usage", 0))
        except Exception:  # memory is informative; a container stopping meanwhile is not an error
            return 0

    def addresses(self) -> dict[str, str]:
        e = self.endpoints()
        return e.addresses((s.name for s in self.specs), {"kafka": e.kafka_bootstrap})

    # -- logs -----------------------------------------------------------------------------------------
    def log_names(self) -> list[str]:
        return [s.name for s in services_only(self.specs)] + ["flink-job"]

    def log_lines(self, name: str, tail: int, follow: bool) -> Iterator[str]:
        if name == "flink-job":
            if not self.job_log.is_file():
                raise ServiceUnavailable(f"no log for flink-job yet ({self.job_log})", hint="start the stack with `streamctl up`")
            yield from tail_file(self.job_log, tail).splitlines()
            return
        yield from self._labelled().logs(name, tail, follow)
