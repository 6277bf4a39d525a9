"""Provisioning shared by every runtime: topics, database schema, index template, the Flink job.

Everything here talks to services through their published addresses, so it does not care whether
they run as local processes or containers. Every step is idempotent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from streamctl.errors import StartupError
from streamctl.kafka_access import KafkaAccess

if TYPE_CHECKING:
    from streamctl.access import ElasticsearchAccess, PostgresAccess
from streamctl.paths import STACK_DIR
from streamctl.waits import http_json

JOB_NAME = "streamctl-sales-aggregation"


@dataclass(frozen=True)
class StackNames:
    """What the stack's job and consumers are called in the clusters. The default stack keeps the short
    names; any other carries its own name, so stacks sharing a Flink or Kafka cluster stay apart."""

    job_name: str
    job_group: str
    indexer_group: str

    @classmethod
    def of(cls, settings) -> "StackNames":
        suffix = "" if settings.stack_name == "default" else f"-{settings.stack_name}"
        return cls(f"{JOB_NAME}{suffix}", f"streamctl-job{suffix}", f"streamctl-indexer{suffix}")

    def lag_groups(self, settings) -> dict[str, str]:
        """Consumer group -> the topic it reads, for the lag report."""
        return {self.job_group: settings.kafka.topic, self.indexer_group: settings.kafka.aggregates_topic}
# The job keeps its keyed state in RocksDB (job.py), which lives in the TaskManagers' managed memory.
TASKMANAGER_MANAGED_FRACTION = 0.3
# The REST API serves metrics (watermarks among them) fetched from the TaskManagers at most this long
# ago; the job's lag (pipeline/job_lag.py) is read from them. Flink's default, 10 s, would make a job
# that keeps up look up to 10 s behind.
METRICS_FETCH_INTERVAL_MS = 1000
JOB_FILE = STACK_DIR / "flink" / "job.py"
SCHEMA_FILE = STACK_DIR / "postgres" / "schema.sql"
INDEX_TEMPLATE_FILE = STACK_DIR / "elasticsearch" / "index-template.json"


def create_topics(kafka: KafkaAccess, topics: dict[str, dict[str, str]], partitions: int,
                  replication: int = 1) -> list[str]:
    """Create missing topics; returns the names created. An existing topic keeps its partitions and
    gets the configuration streamctl relies on (an older stack's topic lacks LogAppendTime)."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**kafka.kafka_python(), request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, partitions, replication, topic_configs=configs)
                  for name, configs in topics.items() if name not in existing]
        if wanted:
            try:
                admin.create_topics(wanted, timeout_ms=10000)
            except TopicAlreadyExistsError:
                pass
        present = [ConfigResource(ConfigResourceType.TOPIC, name, configs=configs)
                   for name, configs in topics.items() if name in existing]
        if present:
            admin.alter_configs(present)  # the whole set each time: alter_configs replaces, it does not merge
        return [t.name for t in wanted]
    finally:
        admin.close()


def topic_layout(topic: str, aggregates_topic: str, min_insync_replicas: int = 1) -> dict[str, dict[str, str]]:
    isr = {"min.insync.replicas": str(min_insync_replicas)}  # with acks=all: how many copies a 2xx means
    return {
        # The broker stamps each record with the time it appended it: the job's event time stays
        # within a tolerance of that stamp, so no writer can make a record late (see job.py).
        topic: {**isr, "message.timestamp.type": "LogAppendTime"},
        # One record per window key is all the indexer needs: compact it.
        aggregates_topic: {**isr, "cleanup.policy": "compact"},
    }


def apply_schema_in(postgres: PostgresAccess) -> None:
    """The table and its columns in a database that exists (a cluster streamctl did not create)."""
    _run_schema_file(postgres.connect(timeout_s=10))


def _run_schema_file(connection) -> None:
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(SCHEMA_FILE.read_text())
    finally:
        connection.close()


def apply_schema(admin_dsn: str, database: str) -> None:
    import psycopg2
    from psycopg2 import sql

    connection = psycopg2.connect(admin_dsn, connect_timeout=5)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    finally:
        connection.close()
    _run_schema_file(psycopg2.connect(admin_dsn.rsplit("/", 1)[0] + f"/{database}", connect_timeout=5))


def install_index_template(es: ElasticsearchAccess, index: str) -> None:
    template = json.loads(INDEX_TEMPLATE_FILE.read_text())
    template["index_patterns"] = [f"{index}*"]
    status, body = es.request(f"/_index_template/streamctl-{index}", 10, "PUT", template)
    if status != 200:
        raise StartupError(f"Elasticsearch refused the index template ({status})", details=str(body)[:1000])
    status, body = es.request(f"/{index}", 10)
    if status == 404:
        status, body = es.request(f"/{index}", 10, "PUT", {})
        if status not in (200, 400):  # 400: created meanwhile (resource_already_exists)
            raise StartupError(f"creating index {index} failed ({status})", details=str(body)[:1000])


# The layout of the job's keyed state. A job restores only state of its own layout: 1 was the SQL OVER
# window that decided retries; 2 is RetryRule (stack/flink/java). Raise it with any change to the job's
# operators that a savepoint cannot carry over.
JOB_STATE_FORMAT = 2


@dataclass(frozen=True)
class JobConfig:
    """What the job needs to know; written as job.json next to the submission."""

    kafka_bootstrap: str
    kafka_properties: dict  # the Java client's security settings (security.protocol, sasl.*, ssl.*)
    topic: str
    aggregates_topic: str
    group_id: str
    jdbc_url: str
    jdbc_user: str
    jdbc_password: str
    window_seconds: int
    watermark_delay_seconds: int
    checkpoint_interval_seconds: int
    parallelism: int
    dedup_minutes: int
    job_name: str = JOB_NAME
    pipeline_jars: tuple[str, ...] = ()  # file: URIs the client ships with the job (a cluster without connectors)
    read_from_ms: int | None = None  # a replay: read the topic from this append time (None: from the start)
    emit_from_ms: int = 0  # a replay: write only windows starting at or after this
    state_format: int = JOB_STATE_FORMAT  # recorded in job.json: what state this job's savepoints hold

    @classmethod
    def of(cls, settings, kafka: KafkaAccess, postgres: PostgresAccess) -> "JobConfig":
        """The job's configuration from the settings; the addresses as the job's cluster reaches them."""
        flink = settings.flink
        properties = kafka.java_properties()
        properties.pop("bootstrap.servers")
        return cls(
            kafka_bootstrap=kafka.bootstrap, kafka_properties=properties, topic=settings.kafka.topic,
            aggregates_topic=settings.kafka.aggregates_topic, group_id=StackNames.of(settings).job_group,
            job_name=StackNames.of(settings).job_name,
            jdbc_url=postgres.jdbc_url(), jdbc_user=postgres.user, jdbc_password=postgres.password,
            window_seconds=flink.window_seconds, watermark_delay_seconds=flink.watermark_delay_seconds,
            checkpoint_interval_seconds=flink.checkpoint_interval_seconds, parallelism=flink.parallelism,
            dedup_minutes=flink.dedup_minutes,
        )

    @property
    def event_time_tolerance_ms(self) -> int:
        return event_time_tolerance_ms(self.watermark_delay_seconds)

    def to_json(self) -> dict:
        return {**asdict(self), "event_time_tolerance_ms": self.event_time_tolerance_ms}

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)  # it holds the database password
        path.write_text(json.dumps(self.to_json(), indent=2))
        return path


def event_time_tolerance_ms(watermark_delay_seconds: int) -> int:
    """How far transaction_date may be from Kafka's append time and still be the event time: under
    half the watermark delay, so no record can fall behind the watermark (see job.py)."""
    return max(0, (watermark_delay_seconds * 1000 - 1) // 2)


JOB_CONFIG_FILE = "job.json"


def submitted_job_config(flink_dir: Path) -> dict | None:
    """job.json as the running job was last submitted with (without the password), or None."""
    try:
        config = json.loads((flink_dir / JOB_CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    config.pop("jdbc_password", None)
    config.get("kafka_properties", {}).pop("sasl.jaas.config", None)  # holds the Kafka password
    return config


TERMINAL_STATES = ("FINISHED", "CANCELED", "FAILED")  # a Flink job in one of these runs no more


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str
    start_time: int

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL_STATES


def find_job(rest_url: str, name: str = JOB_NAME) -> JobState | None:
    """The newest job of that name that is not finished (or the newest at all)."""
    status, body = http_json(f"{rest_url}/jobs/overview", 5)
    if status != 200:
        return None
    jobs = [j for j in body.get("jobs", []) if j.get("name") == name]
    if not jobs:
        return None
    active = [j for j in jobs if j["state"] not in TERMINAL_STATES]
    job = max(active or jobs, key=lambda j: j.get("start-time", 0))
    return JobState(job["jid"], job["state"], job.get("start-time", 0))


def job_fully_running(rest_url: str, job_id: str) -> tuple[bool, str]:
    status, body = http_json(f"{rest_url}/jobs/{job_id}", 5)
    if status != 200:
        return False, f"job {job_id}: {status}"
    vertices = body.get("vertices", [])
    running = sum(1 for v in vertices if v.get("status") == "RUNNING")
    if body.get("state") == "RUNNING" and vertices and running == len(vertices):
        return True, f"RUNNING ({running} tasks)"
    return False, f"{body.get('state')} ({running}/{len(vertices)} tasks running)"


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest completed checkpoint (one with _metadata) under state.checkpoints.dir."""
    found = [m.parent for m in checkpoints_dir.glob("*/chk-*/_metadata")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
