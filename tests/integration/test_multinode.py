"""A multi-node local cluster: three KRaft brokers behind TLS + SASL/SCRAM and two TaskManagers, real
processes under one stack name. A broker killed during load loses nothing."""

from __future__ import annotations

import json
import os
import signal
import stat
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streamctl.endpoints import Endpoints
from streamctl.exit_codes import ExitCode
from streamctl.runtimes.local.runtime import LocalRuntime
from streamctl.waits import http_json
from tests.integration.stackutil import TEST_PORTS, Poster, assert_exact, cli, running_stack, settings_of, wait_for
from tests.integration.test_local_stack import topic_records

pytestmark = pytest.mark.integration

BROKERS = ("kafka-1", "kafka-2", "kafka-3")
TASKMANAGERS = ("flink-taskmanager-1", "flink-taskmanager-2")


@pytest.fixture(scope="module")
def stack():
    with running_stack("it-multi", kafka={"partitions": 3, "brokers": 3, "security": "sasl_ssl"},
                       flink={"window_seconds": 10, "watermark_delay_seconds": 2, "checkpoint_interval_seconds": 5,
                              "taskmanagers": 2, "taskmanager_memory_mb": 1024}) as config:
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


def test_three_brokers_and_two_taskmanagers_run_as_one_stack(stack, capsys):
    report = status_report(stack, capsys)
    services = {s["name"]: s for s in report["services"]}
    assert set(BROKERS + TASKMANAGERS) <= set(services)
    assert "kafka" not in services and "flink-taskmanager" not in services
    assert all(services[name]["healthy"] for name in BROKERS + TASKMANAGERS), services
    assert report["job_state"] == "RUNNING"
    status, overview = http_json(f"http://127.0.0.1:{TEST_PORTS['flink_rest']}/overview", 5)
    assert overview["taskmanagers"] == 2 and overview["slots-total"] >= 2

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
        time.sleep(4)
        os.kill(victim, signal.SIGKILL)
        started = time.monotonic()
        time.sleep(12)
    answered = sum(poster.statuses.values())
    refused = sum(n for code, n in poster.statuses.items() if not 200 <= code < 300)
    print(f"\nbroker kill: {poster.statuses} in {time.monotonic() - started + 4:.0f} s")
    assert poster.statuses.get(201, 0) > 100
    assert refused <= 0.02 * answered, poster.statuses  # at most the leader elections' few seconds
    wait_for(lambda: (r := runtime.supervisor.record("kafka-2")) is not None and r.pid != victim, 60,
             what="the watchdog to start the killed broker again")
    in_topic = {r.get("transaction_id") for r in topic_records(stack)}
    assert poster.acknowledged <= in_topic
    assert_exact(stack, capsys, "120s")


def test_the_access_object_never_shows_the_password(stack):
    access = Endpoints.of(settings_of(stack)).kafka
    assert access.password
    assert access.password not in access.describe() and access.password not in repr(access)
