"""Provisioning shared by every runtime: topics, database schema, index template (the Flink job's
configuration and REST client are streamctl/flink/).

Everything here talks to services through their published addresses, so it does not care whether
they run as local processes or containers. Every step is idempotent.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from streamctl.errors import StartupError

# Known here before they had homes of their own (the stack's names; Flink's job config and REST API):
# re-exported for callers that still reach them through this module.
from streamctl.flink.config import JobConfig, submitted_job_config  # noqa: F401
from streamctl.flink.rest import JobState, find_job, job_fully_running  # noqa: F401
from streamctl.kafka_access import KafkaAccess
from streamctl.names import JOB_NAME, StackNames  # noqa: F401
from streamctl.paths import STACK_DIR

if TYPE_CHECKING:
    from streamctl.access import ElasticsearchAccess, PostgresAccess

SCHEMA_FILE = STACK_DIR / "postgres" / "schema.sql"
INDEX_TEMPLATE_FILE = STACK_DIR / "elasticsearch" / "index-template.json"


@runtime_checkable
class TopicHost(Protocol):
    """A runtime that runs (or reaches) the stack's Kafka: how many copies the topics streamctl creates
    get. Not part of the runtime contract (runtimes/model.py), which knows no Kafka."""

    def topic_replication(self) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) for the topics streamctl creates."""
        ...


def topic_replication(host: object) -> tuple[int, int]:
    if not isinstance(host, TopicHost):
        raise StartupError(f"the {getattr(host, 'name', type(host).__name__)} runtime reaches no Kafka")
    return host.topic_replication()


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
