"""A multi-node local cluster: three KRaft brokers behind TLS + SASL/SCRAM and two TaskManagers, real
processes under one stack name. A broker killed during load loses nothing."""

from __future__ import annotations

import json
import os
import signal
import stat
import time

import psycopg2
import pytest
import yaml
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streamctl.endpoints import Endpoints
from streamctl.exit_codes import ExitCode
from streamctl.provision import StackNames, find_job
from streamctl.runtimes.local.runtime import LocalRuntime
from streamctl.waits import http_json
from tests.integration.stackutil import (
    TEST_PORTS, Poster, assert_exact, assert_live_view_shows_the_exact_stack, cli, running_stack, settings_of,
    validate_json, wait_for,
)
from tests.integration.stackutil import topic_records

pytestmark = [pytest.mark.integration, pytest.mark.destructive]

BROKERS = ("kafka-1", "kafka-2", "kafka-3")
TASKMANAGERS = ("flink-taskmanager-1", "flink-taskmanager-2")


@pytest.fixture(scope="module")
def stack():
    with running_stack("it-multi", kafka={"partitions": 3, "brokers": 3, "security": "sasl_ssl"},
                       flink={"window_seconds": 5, "checkpoint_interval_seconds": 5,
                              "taskmanagers": 2, "slots_per_taskmanager": 2,  # free slots for the external job
                              "taskmanager_memory_mb": 1024}) as config:
        yield config


@pytest.fixture(scope="module")
def api(stack):
    return f"http://127.0.0.1:{TEST_PORTS['producer']}"


def status_report(stack, capsys) -> dict:
    capsys.readouterr()
    assert cli(stack, "status", "--json") == ExitCode.OK
    return json.loads(capsys.readouterr().out)


def answers(conf: dict) -> bool:
    """Whether a librdkafka client with this configuration gets the cluster's metadata."""
    try:
        AdminClient({**conf, "log_level": 0, "socket.timeout.ms": 3000}).list_topics(timeout=6)
        return True
    except KafkaException:
        return False


def cluster_is_whole(stack) -> bool:
    """Every broker registered and in the in-sync replicas of every partition of the stack's topic."""
    settings = settings_of(stack)
    topic = settings.kafka.topic
    try:
        metadata = AdminClient({**Endpoints.of(settings).kafka.librdkafka(), "log_level": 0}).list_topics(
            topic, timeout=10)
    except KafkaException:
        return False
    partitions = metadata.topics[topic].partitions.values()
    return len(metadata.brokers) == len(BROKERS) and all(len(p.isrs) == len(BROKERS) for p in partitions)


def test_three_brokers_and_two_taskmanagers_run_as_one_stack(stack, capsys):
    report = status_report(stack, capsys)
    services = {s["name"]: s for s in report["services"]}
    assert set(BROKERS + TASKMANAGERS) <= set(services)
    assert "kafka" not in services and "flink-taskmanager" not in services
    assert all(services[name]["healthy"] for name in BROKERS + TASKMANAGERS), services
    assert report["job_state"] == "RUNNING"
    status, overview = http_json(f"http://127.0.0.1:{TEST_PORTS['flink_rest']}/overview", 5)
    assert overview["taskmanagers"] == 2 and overview["slots-total"] == 4

    from confluent_kafka.admin import ConfigResource

    settings = settings_of(stack)
    admin = AdminClient(Endpoints.of(settings).kafka.librdkafka())
    topic = settings.kafka.topic
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    assert {len(p.replicas) for p in partitions.values()} == {3}
    assert len({p.leader for p in partitions.values()}) > 1  # the leaders are spread over the brokers
    (future,) = admin.describe_configs([ConfigResource("topic", topic)]).values()
    assert future.result(timeout=10)["min.insync.replicas"].value == "2"


def test_only_clients_with_the_stacks_ca_and_password_get_in(stack):
    access = Endpoints.of(settings_of(stack)).kafka
    assert access.security_protocol == "SASL_SSL" and access.bootstrap.count(",") == 2
    right = access.librdkafka()
    assert answers(right)  # the control: the stack's own credentials work
    assert not answers({**right, "sasl.password": access.password + "x"})
    assert not answers({k: v for k, v in right.items() if k != "ssl.ca.location"})  # the system CAs do not vouch
    assert not answers({"bootstrap.servers": access.bootstrap, "security.protocol": "PLAINTEXT"})
    assert not answers({**right, "sasl.mechanism": "PLAIN"})


def test_secrets_are_readable_by_their_owner_only(stack):
    stack_dir = settings_of(stack).stack_dir
    for path in [stack_dir / "secrets.json", stack_dir / "tls" / "ca.key", stack_dir / "tls" / "broker.pem",
                 *(stack_dir / name / "server.properties" for name in BROKERS), stack_dir / "flink" / "job.json"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    password = json.loads((stack_dir / "secrets.json").read_text())["kafka_password"]
    for log in (stack_dir / "logs").glob("*.log"):
        assert password not in log.read_text(errors="replace"), log


def test_kill_9_of_a_broker_during_load_keeps_answering_and_loses_nothing(stack, api, capsys):
    runtime = LocalRuntime(settings_of(stack))
    victim = runtime.supervisor.record("kafka-2").pid
    with Poster(api, retries=True) as poster:
        poster.wait_for_more(50)
        os.kill(victim, signal.SIGKILL)
        started = time.monotonic()
        time.sleep(12)
    answered = sum(poster.statuses.values())
    refused = sum(n for code, n in poster.statuses.items() if not 200 <= code < 300)
    with capsys.disabled():  # the figures, in a run with -s
        print(f"\nbroker kill: {poster.statuses} in {time.monotonic() - started + 4:.0f} s")
    assert poster.statuses.get(201, 0) > 100
    assert refused <= 0.02 * answered, poster.statuses  # at most the leader elections' few seconds
    wait_for(lambda: (r := runtime.supervisor.record("kafka-2")) is not None and r.pid != victim, 60,
             what="the watchdog to start the killed broker again")
    # A new process is not yet a member: after a kill -9 the broker recovers its logs before it registers,
    # and the tests after this one need the whole cluster (the external runtime asks for 3 replicas).
    wait_for(lambda: cluster_is_whole(stack), 240, interval_s=2, what="the restarted broker to rejoin every ISR")
    with capsys.disabled():
        print(f"broker kill: the cluster was whole again {time.monotonic() - started:.0f} s after the kill")
    in_topic = {r.get("transaction_id") for r in topic_records(stack)}
    assert poster.acknowledged <= in_topic
    assert_exact(stack, capsys, "120s")


def test_the_access_object_never_shows_the_password(stack):
    access = Endpoints.of(settings_of(stack)).kafka
    assert access.password
    assert access.password not in access.describe() and access.password not in repr(access)


# -- the external runtime, pointed at this cluster as if someone else ran it ---------------------------------

EXTERNAL_PRODUCER = TEST_PORTS["producer"] + 1000


def external_config(stack, name: str = "it-ext", kafka: dict | None = None, flink: dict | None = None):
    """A second stack, `runtime: external`, whose clusters are the multi-node stack's: its own topics,
    database, index, job and consumer groups. Passwords by file and by environment variable only."""
    multi = settings_of(stack)
    access = Endpoints.of(multi).kafka
    secret = multi.state_dir / f"{name}-kafka-password"
    secret.write_text(access.password + "\n")
    secret.chmod(0o600)
    os.environ["IT_EXT_PG_PASSWORD"] = Endpoints.of(multi).postgres.password
    config = {
        "stack_name": name, "state_dir": str(multi.state_dir), "runtime": "external",
        "ports": {**TEST_PORTS, "producer": EXTERNAL_PRODUCER, "ui": TEST_PORTS["ui"] + 1000},
        "kafka": {"topic": "ext-transactions", "aggregates_topic": "ext-aggregated", "partitions": 3},
        "flink": {"window_seconds": 5, "checkpoint_interval_seconds": 5,
                  "parallelism": 2},
        "elasticsearch": {"index": "ext-aggregated"},
        "external": {
            "kafka": {"bootstrap_servers": access.bootstrap, "security_protocol": "SASL_SSL",
                      "sasl_mechanism": "SCRAM-SHA-512", "username": access.username, "password_file": str(secret),
                      "ca_file": access.ca_file, "min_replication": 3, **(kafka or {})},
            "flink": {"rest_url": f"http://127.0.0.1:{TEST_PORTS['flink_rest']}", **(flink or {})},
            "postgres": {"dsn": f"postgresql://streamctl@127.0.0.1:{TEST_PORTS['postgres']}/external?sslmode=disable",
                         "password_env": "IT_EXT_PG_PASSWORD"},
            "elasticsearch": {"url": f"http://127.0.0.1:{TEST_PORTS['elasticsearch']}"},
        },
    }
    path = multi.state_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def external_database(stack):
    connection = psycopg2.connect(Endpoints.of(settings_of(stack)).postgres.dsn(database="postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("CREATE DATABASE external")
    connection.close()


def refused(config, capsys, *args: str) -> str:
    """`up` refuses with exit 4 and one line; returns that line. Nothing of the stack was started."""
    capsys.readouterr()
    assert cli(config, "up", *args) == ExitCode.PREFLIGHT_FAILED
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert not (settings_of(config).stack_dir / "run" / "producer.pid").exists()
    return next(line for line in err.splitlines() if line.startswith("error:"))


def test_external_runtime_refuses_each_endpoint_that_is_not_ready(stack, external_database, capsys, tmp_path):
    from streamctl.runtimes.local.tls import ensure_tls

    assert cli(external_config(stack, "it-ext-check"), "doctor") == ExitCode.OK  # the control: all is well
    wrong = settings_of(stack).state_dir / "wrong-password"
    wrong.write_text("not-the-password")
    line = refused(external_config(stack, "it-ext-pw", kafka={"password_file": str(wrong)}), capsys)
    assert "kafka" in line and "refused the credentials" in line, line
    other_ca = ensure_tls(tmp_path / "other-ca", "127.0.0.1").ca_cert
    line = refused(external_config(stack, "it-ext-ca", kafka={"ca_file": str(other_ca)}), capsys)
    assert "TLS handshake failed" in line, line
    line = refused(external_config(stack, "it-ext-jm", flink={"rest_url": "http://127.0.0.1:1"}), capsys)
    assert "JobManager" in line and "does not answer" in line, line

    from confluent_kafka.admin import NewTopic

    access = Endpoints.of(settings_of(stack)).kafka
    admin = AdminClient(access.librdkafka())
    for future in admin.create_topics([NewTopic("rf1-transactions", 3, 1)]).values():
        future.result(timeout=20)
    config = external_config(stack, "it-ext-rf")
    settings = yaml.safe_load(config.read_text())
    settings["kafka"]["topic"] = "rf1-transactions"
    config.write_text(yaml.safe_dump(settings))
    line = refused(config, capsys)
    assert "rf1-transactions has replication factor 1, below external.kafka.min_replication 3" in line, line
    capsys.readouterr()
    assert cli(config, "doctor") == ExitCode.PREFLIGHT_FAILED


def test_external_runtime_on_the_multi_node_cluster_is_exact_and_down_leaves_the_cluster(
        stack, external_database, capsys):
    config = external_config(stack)
    try:
        assert cli(config, "up") == ExitCode.OK
        status = status_report(config, capsys)
        assert status["runtime"] == "external" and status["job_state"] == "RUNNING"
        assert {s["name"] for s in status["services"]} == {"producer", "indexer"}  # all streamctl runs itself
        with Poster(f"http://127.0.0.1:{EXTERNAL_PRODUCER}") as poster:
            poster.wait_for_more(150)
        assert poster.statuses.get(201, 0) > 100
        report = assert_exact(config, capsys, "120s")
        assert report["topic"]["transactions"] == len(poster.acknowledged)
        assert_live_view_shows_the_exact_stack(config)
        capsys.readouterr()
        assert cli(config, "down", "--purge") == ExitCode.USAGE  # never deletes data in someone else's clusters
        assert "never deletes data" in capsys.readouterr().err
    finally:
        assert cli(config, "down") == ExitCode.OK
    rest = f"http://127.0.0.1:{TEST_PORTS['flink_rest']}"
    assert find_job(rest, StackNames.of(settings_of(config)).job_name).state == "FINISHED"  # stopped with a savepoint
    assert (settings_of(config).stack_dir / "flink" / "last-savepoint").is_file()
    assert find_job(rest, StackNames.of(settings_of(stack)).job_name).state == "RUNNING"  # the cluster's own job
    code, report = validate_json(stack, capsys, "--wait", "60s")
    assert report["topic"]["transactions"] > 0 and code in (ExitCode.OK, ExitCode.INCONCLUSIVE), report
