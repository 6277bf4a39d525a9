"""The external runtime: Kafka, Flink, PostgreSQL and Elasticsearch are clusters someone else runs.

streamctl checks them (doctor), provisions what it needs in them (topics with the configured
replication, the table, the index template), submits the job to the Flink session cluster, and runs
only its own processes here: the producer API and the indexer, supervised as in the local runtime.
`down` stops the job with a savepoint and stops those processes; it never deletes data it did not create.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from streamctl.artifacts.fetch import cached_file
from streamctl.artifacts.lock import Role, read_lock
from streamctl.config import Settings
from streamctl.endpoints import external_endpoints
from streamctl.errors import PreflightError, UsageError
from streamctl.flink.cluster import FlinkCluster, flink_home
from streamctl.flink.config import JobConfig
from streamctl.flink.placement import JobPlacement
from streamctl.machine import preflight
from streamctl.machine.context import LocalContext
from streamctl.machine.java import find_java
from streamctl.paths import LOCK_FILE
from streamctl.runtimes.external.doctor import Finding, doctor, min_isr_for, replication_of
from streamctl.runtimes.local.runtime import LocalRuntime
from streamctl.runtimes.model import NO_PROGRESS, Progress
from streamctl.secrets import Secrets
from streamctl.services import services_only
from streamctl.topology import stack
from streamctl.waits import http_json

# What the local client must not hand to someone else's cluster: its own addresses, memory and state
# directories come from the cluster's configuration.
_CLUSTER_KEYS = ("state.", "jobmanager.", "taskmanager.", "rest.", "blob.", "parallelism.")


def cluster_jars(rest_url: str) -> set[str]:
    """The jar names on the JobManager's classpath (its lib/), as its REST API reports them."""
    try:
        status, environment = http_json(f"{rest_url}/jobmanager/environment", 5)
    except (OSError, ValueError):
        return set()
    classpath = environment.get("classpath", []) if status == 200 and isinstance(environment, dict) else []
    return {entry.rsplit("/", 1)[-1] for entry in classpath}


# The SQL connector jar bundles the connector and its Kafka client: with it, neither is to be sent.
_BUNDLED_BY = {"flink-connector-kafka": "flink-sql-connector-kafka", "kafka-clients": "flink-sql-connector-kafka",
               "flink-connector-jdbc": "flink-sql-connector-jdbc"}


def _on_classpath(artifact: str, jars: set[str]) -> bool:
    names = (artifact, _BUNDLED_BY.get(artifact, artifact))
    return any(jar.startswith(f"{name}-") for jar in jars for name in names)


class ClientOnly(FlinkCluster):
    """The PyFlink client's conf/ and lib/ (connectors included, for planning the job), without the
    local cluster's settings."""

    def config(self) -> dict[str, object]:
        return {k: v for k, v in super().config().items() if not k.startswith(_CLUSTER_KEYS)}


class ExternalRuntime(LocalRuntime):
    """Only streamctl's own processes run here, supervised as locally; the clusters are someone else's."""

    name = "external"
    owns_clusters = False

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.specs = stack(settings, runtime="external")
        self.services = services_only(self.specs)

    def check(self) -> list[Finding]:
        """Each external endpoint checked (what `streamctl doctor` prints)."""
        return doctor(self.settings, external_endpoints(self.settings))

    # -- up ------------------------------------------------------------------------------------------
    def preflight(self, fetch: Callable[[], None] | None, progress: Progress = NO_PROGRESS) -> list[str]:
        java = find_java(self.settings.java_home)  # the job is planned and submitted from this machine
        flink_home()
        self.check_free_ports()
        preflight.check_disk(self.stack_dir)
        for finding in self.check():
            if not finding.ok:
                raise PreflightError(f"{finding.service}: {finding.detail}", hint=finding.hint)
        if fetch is not None:
            fetch()
        self.stack_dir.mkdir(parents=True, exist_ok=True)
        # Nothing here runs PostgreSQL or Elasticsearch: no service account; the passwords are the user's.
        self._ctx = LocalContext(self.settings, java, Secrets.load_or_create(self.stack_dir), None)
        return []

    def topic_replication(self) -> tuple[int, int]:
        replication = replication_of(self.settings)
        return replication, self.settings.kafka.min_insync_replicas or min_isr_for(replication)

    # -- the Flink job -------------------------------------------------------------------------------
    def job_config(self, ctx: LocalContext) -> JobConfig:
        config = JobConfig.of(self.settings, ctx.kafka, ctx.endpoints.postgres)
        if not self.settings.external.flink.ship_connectors:
            return config
        present = cluster_jars(ctx.endpoints.flink_url)
        # Only what the cluster lacks: a second copy of a class its lib/ holds (kafka-clients) fails
        # the job with "cannot assign instance of X to field of type X" (measured).
        jars = tuple(cached_file(self.settings.cache_dir, a).resolve().as_uri()
                     for a in read_lock(LOCK_FILE).by_role(Role.FLINK_CONNECTOR)
                     if a.extension == "jar" and not _on_classpath(a.artifact, present))
        return dataclasses.replace(config, pipeline_jars=jars)

    def job_placement(self) -> JobPlacement:
        ctx = self.context()
        client = ClientOnly(ctx)
        client.prepare()
        return JobPlacement(ctx.endpoints.flink_url, self.job_config(ctx), client, self.stack_dir / "flink",
                            self.settings.external.flink.savepoint_dir or None,
                            log_file=self.supervisor.log_file("flink-job"),
                            failure_hint="see `streamctl logs flink-job` and the session cluster's own logs")

    def running(self, role: str) -> bool:
        if role in {s.runs_as for s in self.services}:
            return super().running(role)
        return True  # someone else's cluster (Kafka, Flink...): `down` and `status` always ask it

    # -- down ----------------------------------------------------------------------------------------
    def before_down(self, purge: bool) -> None:
        if purge:
            raise UsageError("--purge deletes a stack's data, and the external runtime never deletes data in"
                             " clusters streamctl did not create",
                             hint="run `streamctl down` without --purge; drop the topics, table and index yourself")
        super().before_down(purge)  # the job with a savepoint, then only what streamctl started

    def addresses(self) -> dict[str, str]:
        e = self.endpoints()
        return e.addresses((s.name for s in self.specs), {"postgres": e.postgres.dsn(with_password=False)})
