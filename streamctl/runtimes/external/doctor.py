"""Check each external endpoint before anything starts: reachable, credentials accepted, certificate
trusted, the versions streamctl supports, topics replicated enough. One finding per service, each
with what is wrong in one line and how to fix it."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Callable

from streamctl.config import Settings
from streamctl.endpoints import ElasticsearchAccess, Endpoints, PostgresAccess
from streamctl.kafka_access import KafkaAccess

FLINK_VERSION = "1.20."  # the job is compiled by this package's PyFlink 1.20 client
ELASTICSEARCH_MAJOR = "8."  # the indexer's and validate's client speak Elasticsearch 8


@dataclass(frozen=True)
class Finding:
    service: str
    ok: bool
    detail: str
    hint: str = ""


def _kafka_failure(access: KafkaAccess, errors: list) -> Finding:
    from confluent_kafka import KafkaError

    codes = {e.code() for e in errors}
    text = "; ".join(sorted({e.str() for e in errors}))[:300]
    if KafkaError._AUTHENTICATION in codes or "authentication failed" in text.lower():
        return Finding("kafka", False, f"{access.describe()}: the brokers refused the credentials",
                       "check external.kafka.username, the password it names and sasl_mechanism")
    if KafkaError._SSL in codes or "certificate" in text.lower() or "handshake" in text.lower():
        return Finding("kafka", False, f"{access.describe()}: TLS handshake failed ({text})",
                       "point external.kafka.ca_file at the CA that signed the brokers' certificates")
    return Finding("kafka", False, f"{access.describe()}: no broker answers ({text or 'timed out'})",
                   "check external.kafka.bootstrap_servers and that this machine can reach them")


def check_kafka(settings: Settings, access: KafkaAccess) -> Finding:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, ConfigResource

    errors: list = []
    conf: dict = {**access.librdkafka(), "error_cb": errors.append, "socket.timeout.ms": 5000, "log_level": 0}
    admin = AdminClient(conf)
    try:
        metadata = admin.list_topics(timeout=8)
    except KafkaException as exc:
        admin.poll(1)  # error callbacks (the SASL or TLS reason) are only served by poll()
        return _kafka_failure(access, errors + [exc.args[0]])
    if errors and not metadata.brokers:
        return _kafka_failure(access, errors)
    wanted = replication_of(settings)
    k = settings.external.kafka
    low = "or set external.kafka.allow_low_replication: true to accept it"
    if wanted < k.min_replication and not k.allow_low_replication:
        return Finding("kafka", False, f"kafka.replication_factor {wanted} is below external.kafka.min_replication"
                                       f" {k.min_replication}", f"raise kafka.replication_factor, {low}")
    if len(metadata.brokers) < wanted:
        return Finding("kafka", False, f"the cluster has {len(metadata.brokers)} broker(s); topics need {wanted}"
                                       " replicas", "lower kafka.replication_factor (and external.kafka.min_replication)")
    for name in (settings.kafka.topic, settings.kafka.aggregates_topic):
        topic = metadata.topics.get(name)
        if topic is None or not topic.partitions:
            continue  # created by `up` with the configured replication
        replicas = min(len(p.replicas) for p in topic.partitions.values())
        if replicas < k.min_replication and not k.allow_low_replication:
            return Finding("kafka", False, f"topic {name} has replication factor {replicas}, below"
                                           f" external.kafka.min_replication {k.min_replication}",
                           f"recreate {name} with {k.min_replication} replicas, {low}")
        try:
            (future,) = admin.describe_configs([ConfigResource("topic", name)]).values()
            isr = int(future.result(timeout=10)["min.insync.replicas"].value)
        except KafkaException as exc:
            return Finding("kafka", False, f"cannot read topic {name}'s configuration ({exc.args[0].str()})",
                           f"grant {access.username or 'the user'} DescribeConfigs on the topic")
        if isr < min_isr_for(replicas) and not k.allow_low_replication:
            return Finding("kafka", False, f"topic {name} has min.insync.replicas {isr}: an acknowledged write"
                                           " may live on one broker only", f"set it to 2 or more, {low}")
    return Finding("kafka", True, f"{access.describe()}: {len(metadata.brokers)} brokers")


def replication_of(settings: Settings) -> int:
    return settings.kafka.replication_factor or settings.external.kafka.min_replication


def min_isr_for(replication: int) -> int:
    """min.insync.replicas streamctl gives a topic it creates, and the least it accepts in one it finds."""
    return max(1, min(2, replication - 1))


def check_flink(settings: Settings, rest_url: str) -> Finding:
    from streamctl.waits import http_json

    try:
        status, config = http_json(f"{rest_url}/config", 5)
        _, overview = http_json(f"{rest_url}/overview", 5)
    except (OSError, ValueError) as exc:
        return Finding("flink", False, f"the JobManager at {rest_url} does not answer"
                                       f" ({getattr(exc, 'reason', exc)})", "check external.flink.rest_url")
    if status != 200 or not isinstance(config, dict):
        return Finding("flink", False, f"{rest_url}/config answered {status}: not a Flink REST API",
                       "check external.flink.rest_url")
    version = str(config.get("flink-version", "?"))
    if not version.startswith(FLINK_VERSION):
        return Finding("flink", False, f"the session cluster runs Flink {version}; the job needs {FLINK_VERSION}x",
                       "point external.flink.rest_url at a Flink 1.20 session cluster")
    free = int(overview.get("slots-available", 0)) if isinstance(overview, dict) else 0
    from streamctl.flink.rest import find_job
    from streamctl.names import StackNames

    job = find_job(rest_url, StackNames.of(settings).job_name)
    if (job is None or job.state != "RUNNING") and free < settings.flink.parallelism:
        return Finding("flink", False, f"the session cluster has {free} free task slots; the job needs"
                                       f" {settings.flink.parallelism}", "add TaskManagers or lower flink.parallelism")
    return Finding("flink", True, f"Flink {version} at {rest_url}, {free} free slots")


def check_postgres(pg: PostgresAccess) -> Finding:
    import psycopg2

    try:
        connection = psycopg2.connect(pg.dsn(with_password=False), password=pg.password, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
        if "password" in first or "authentication" in first:
            hint = "check the user in external.postgres.dsn and the password it names"
        elif "does not exist" in first:
            hint = f"create the database (CREATE DATABASE {pg.database}), or name another in external.postgres.dsn"
        elif "SSL" in first or "certificate" in first:
            hint = "check sslmode and sslrootcert in external.postgres.dsn"
        else:
            hint = "check the host and port in external.postgres.dsn"
        return Finding("postgres", False, f"{pg.dsn(with_password=False)}: {first}", hint)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
            cursor.execute("SELECT has_schema_privilege(current_user, 'public', 'CREATE')")
            can_create = cursor.fetchone()[0]
    finally:
        connection.close()
    if not can_create:
        return Finding("postgres", False, f"{pg.user} may not create tables in {pg.database}.public",
                       f"GRANT CREATE ON SCHEMA public TO {pg.user}")
    return Finding("postgres", True, f"PostgreSQL {version}, database {pg.database}")


def check_elasticsearch(es: ElasticsearchAccess) -> Finding:
    try:
        status, body = es.request("/", 5)
    except ssl.SSLError as exc:
        return Finding("elasticsearch", False, f"{es.url}: TLS handshake failed ({exc.reason})",
                       "point external.elasticsearch.ca_file at the CA that signed its certificate")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLError):
            return Finding("elasticsearch", False, f"{es.url}: TLS handshake failed ({reason.reason})",
                           "point external.elasticsearch.ca_file at the CA that signed its certificate")
        return Finding("elasticsearch", False, f"{es.url} does not answer ({reason})",
                       "check external.elasticsearch.url")
    if status == 401:
        return Finding("elasticsearch", False, f"{es.url} refused the credentials",
                       "check external.elasticsearch.username and the password it names")
    version = str(body.get("version", {}).get("number", "?")) if status == 200 and isinstance(body, dict) else "?"
    if status in (404, 405):  # a distribution without the root endpoint (the integ-test zip): ask the nodes
        status, body = es.request("/_nodes/_local?filter_path=nodes.*.version", 5)
        nodes = body.get("nodes", {}) if status == 200 and isinstance(body, dict) else {}
        found: dict = next(iter(nodes.values()), {})
        version = str(found.get("version", "?"))
    if status != 200 or not version.startswith(ELASTICSEARCH_MAJOR):
        return Finding("elasticsearch", False, f"{es.url} answered {status} with version {version};"
                                               f" streamctl needs Elasticsearch {ELASTICSEARCH_MAJOR}x",
                       "point external.elasticsearch.url at an Elasticsearch 8 cluster")
    return Finding("elasticsearch", True, f"Elasticsearch {version} at {es.url}")


def doctor(settings: Settings, endpoints: Endpoints) -> list[Finding]:
    checks: list[Callable[[], Finding]] = [
        lambda: check_kafka(settings, endpoints.kafka),
        lambda: check_flink(settings, endpoints.flink_url),
        lambda: check_postgres(endpoints.postgres),
        lambda: check_elasticsearch(endpoints.elasticsearch),
    ]
    return [check() for check in checks]
