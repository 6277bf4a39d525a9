"""The stack model derived from settings, the access objects every client receives, and the external
runtime's settings: pure code, no services."""

from __future__ import annotations

import pytest

from streamctl.config import load_settings
from streamctl.endpoints import Endpoints, PostgresAccess, external_endpoints
from streamctl.errors import ConfigError
from streamctl.external_access import flink_rest_url
from streamctl.kafka_access import KafkaAccess
from streamctl.provision import JobConfig, StackNames
from streamctl.secrets import Secrets
from streamctl.topology import spec_ports, stack


def settings(tmp_path, **overrides):
    return load_settings(env={}, cwd=tmp_path, overrides={"state_dir": str(tmp_path), **overrides})


QUOTED = 'pa"ss\\word'  # a quote and a backslash: the JAAS value must escape both
SASL = KafkaAccess("a:1,b:2", "SASL_SSL", "SCRAM-SHA-512", "ann", QUOTED, "/ca.pem")


def test_one_kafka_access_renders_the_same_connection_for_every_client_library():
    assert SASL.librdkafka() == {"bootstrap.servers": "a:1,b:2", "security.protocol": "SASL_SSL",
                                 "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "ann",
                                 "sasl.password": QUOTED, "ssl.ca.location": "/ca.pem"}
    assert SASL.kafka_python()["sasl_plain_password"] == QUOTED
    assert SASL.kafka_python()["ssl_cafile"] == "/ca.pem"
    java = SASL.java_properties()
    # the JAAS value quotes and escapes the password, so a quote in it cannot end the string
    escaped = 'pa\\"ss\\\\word'
    assert java["sasl.jaas.config"] == ('org.apache.kafka.common.security.scram.ScramLoginModule required'
                                        f' username="ann" password="{escaped}";')
    assert java["ssl.truststore.type"] == "PEM" and java["ssl.truststore.location"] == "/ca.pem"
    plain = KafkaAccess("a:1")
    assert plain.librdkafka() == {"bootstrap.servers": "a:1", "security.protocol": "PLAINTEXT"}
    assert "sasl.jaas.config" not in plain.java_properties()


def test_kafka_access_travels_by_environment_and_never_shows_its_password():
    assert KafkaAccess.from_env(SASL.to_env("PRODUCER"), "PRODUCER") == SASL
    assert KafkaAccess.from_env({"PRODUCER_KAFKA_BOOTSTRAP": "k:9"}, "PRODUCER") == KafkaAccess("k:9")
    assert SASL.password not in repr(SASL) and SASL.password not in SASL.describe()


def test_brokers_and_taskmanagers_become_instances_that_dependents_wait_for(tmp_path):
    specs = {s.name: s for s in stack(settings(tmp_path, **{"kafka.brokers": 3, "flink.taskmanagers": 2}))}
    assert {"kafka-1", "kafka-2", "kafka-3", "flink-taskmanager-1", "flink-taskmanager-2"} <= set(specs)
    assert "kafka" not in specs and "flink-taskmanager" not in specs
    assert set(specs["topics"].depends_on) == {"kafka-1", "kafka-2", "kafka-3"}
    assert specs["kafka-2"].runs_as == "kafka" and specs["kafka-2"].instance == 2
    s = settings(tmp_path, **{"kafka.brokers": 3})
    assert spec_ports(s, specs["kafka-3"]) == [("kafka", 9112), ("kafka_controller", 9113)]
    single = {spec.name for spec in stack(settings(tmp_path))}
    assert "kafka" in single and "flink-taskmanager" in single  # one of each keeps its plain name


def test_the_external_stack_is_streamctls_own_processes_and_the_provisioning(tmp_path):
    specs = stack(settings(tmp_path), runtime="external")
    names = {s.name for s in specs}
    assert names == {"producer", "indexer", "topics", "schema", "index-template", "flink-job"}
    assert all(dep in names for s in specs for dep in s.depends_on)


@pytest.mark.parametrize("overrides, message", [
    ({"kafka.brokers": 3, "ports.flink_rest": 9102}, "ports.kafka (broker 2) and ports.flink_rest are both 9102"),
    ({"kafka.brokers": 10}, "kafka.brokers must be between 1 and 9"),
    ({"kafka.security": "tls"}, "kafka.security must be plaintext or sasl_ssl"),
    ({"kafka.brokers": 3, "kafka.min_insync_replicas": 4}, "min_insync_replicas 4 is above the replication factor 3"),
    ({"flink.taskmanagers": 2, "flink.slots_per_taskmanager": 1, "flink.parallelism": 3}, "cannot run parallelism 3"),
    ({"runtime": "cloud"}, "runtime must be auto, local, docker, external"),
])
def test_cluster_settings_that_cannot_work_are_config_errors(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as error:
        settings(tmp_path, **overrides)
    assert message in error.value.message


def test_replication_follows_the_brokers(tmp_path):
    three = settings(tmp_path, **{"kafka.brokers": 3}).kafka
    assert (three.replication(), three.min_isr()) == (3, 2)
    one = settings(tmp_path).kafka
    assert (one.replication(), one.min_isr()) == (1, 1)


def test_the_stacks_own_access_lists_every_broker_and_uses_sasl_when_asked(tmp_path):
    s = settings(tmp_path, **{"kafka.brokers": 3, "kafka.security": "sasl_ssl"})
    access = Endpoints.of(s, Secrets("pg", "kafka-secret")).kafka
    assert access.bootstrap == "127.0.0.1:9092,127.0.0.1:9102,127.0.0.1:9112"
    assert (access.security_protocol, access.username, access.password) == ("SASL_SSL", "streamctl", "kafka-secret")
    assert access.ca_file == str(s.stack_dir / "tls" / "ca.pem")


def test_stack_names_keep_stacks_apart_on_a_shared_cluster(tmp_path):
    default = StackNames.of(settings(tmp_path))
    other = StackNames.of(settings(tmp_path, stack_name="ext"))
    assert default.job_group == "streamctl-job" and default.job_name == "streamctl-sales-aggregation"
    assert other.job_name == "streamctl-sales-aggregation-ext" and other.indexer_group == "streamctl-indexer-ext"


def test_the_job_gets_the_kafka_security_but_job_json_as_read_back_drops_the_password(tmp_path):
    from streamctl.provision import submitted_job_config

    config = JobConfig.of(settings(tmp_path), SASL, PostgresAccess("db", 5432, "u", "pw", "shop", "sslmode=require"))
    assert config.kafka_bootstrap == "a:1,b:2" and "bootstrap.servers" not in config.kafka_properties
    assert config.kafka_properties["security.protocol"] == "SASL_SSL"
    assert config.jdbc_url == "jdbc:postgresql://db:5432/shop?sslmode=require"
    config.write(tmp_path / "job.json")
    read_back = submitted_job_config(tmp_path)
    assert "jdbc_password" not in read_back and "sasl.jaas.config" not in read_back["kafka_properties"]


def external(tmp_path, monkeypatch, **overrides):
    base = {"runtime": "external", "external.kafka.bootstrap_servers": "k1:9096,k2:9096",
            "external.flink.rest_url": "http://jm:8081", "external.postgres.dsn": "postgresql://app@db:5432/shop",
            "external.elasticsearch.url": "https://es:9243/"}
    return settings(tmp_path, **{**base, **overrides})


def test_external_secrets_come_from_a_named_variable_or_file_only(tmp_path, monkeypatch):
    secret = tmp_path / "kafka-password"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("PG_PW", "pg-secret")
    s = external(tmp_path, monkeypatch, **{
        "external.kafka.security_protocol": "SASL_SSL", "external.kafka.sasl_mechanism": "SCRAM-SHA-256",
        "external.kafka.username": "app", "external.kafka.password_file": str(secret),
        "external.postgres.password_env": "PG_PW"})
    e = external_endpoints(s)
    assert e.kafka.password == "s3cret" and e.kafka.bootstrap == "k1:9096,k2:9096"
    assert e.postgres.password == "pg-secret" and (e.postgres.host, e.postgres.database) == ("db", "shop")
    assert e.elasticsearch.url == "https://es:9243" and e.flink_url == "http://jm:8081"


@pytest.mark.parametrize("overrides, message", [
    ({"external.postgres.password_env": "NOT_SET_ANYWHERE"}, "names NOT_SET_ANYWHERE, which is not set"),
    ({"external.postgres.password_file": "/nonexistent/pw"}, "cannot be read"),
    ({"external.postgres.dsn": "postgresql://app:" + "pw@db/shop"}, "give it by password_env or password_file"),
    ({"external.kafka.security_protocol": "SASL_SSL", "external.kafka.sasl_mechanism": "SCRAM-SHA-512",
      "external.kafka.username": "app"}, "names no password"),
    ({"external.kafka.security_protocol": "TLS"}, "security_protocol must be one of"),
    ({"external.kafka.bootstrap_servers": ""}, "external.kafka.bootstrap_servers is not set"),
    ({"external.kafka.ca_file": "/nonexistent/ca.pem"}, "external.kafka.ca_file /nonexistent/ca.pem does not exist"),
    ({"external.flink.rest_url": "https://jm:8081"}, "must be http://host:port"),
])
def test_external_settings_that_cannot_work_are_one_line_config_errors(tmp_path, monkeypatch, overrides, message):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError) as error:
        external_endpoints(external(tmp_path, monkeypatch, **overrides))
    assert message in error.value.message and "\n" not in error.value.message


def test_flink_rest_url_loses_its_trailing_slash(tmp_path, monkeypatch):
    assert flink_rest_url(external(tmp_path, monkeypatch, **{"external.flink.rest_url": "http://jm:8081/"})) \
        == "http://jm:8081"


def test_no_password_hides_in_a_dsn_query_or_an_elasticsearch_url(tmp_path, monkeypatch):
    with pytest.raises(ConfigError):
        external_endpoints(external(tmp_path, monkeypatch, **{
            "external.postgres.dsn": "postgresql://app@db/shop?sslmode=require&" + "password=x"}))
    with pytest.raises(ConfigError) as error:
        external_endpoints(external(tmp_path, monkeypatch, **{"external.elasticsearch.url": "https://u:" + "p@es:9243"}))
    assert "holds credentials" in error.value.message


def test_connectors_already_in_the_cluster_are_not_sent_again():
    from streamctl.runtimes.external.runtime import _on_classpath

    plain = {"flink-connector-kafka-3.4.0-1.20.jar", "kafka-clients-3.4.0.jar"}
    assert _on_classpath("kafka-clients", plain) and _on_classpath("flink-connector-kafka", plain)
    assert not _on_classpath("postgresql", plain)
    uber = {"flink-sql-connector-kafka-3.4.0-1.20.jar"}  # bundles the client: send neither
    assert _on_classpath("kafka-clients", uber) and _on_classpath("flink-connector-kafka", uber)


def test_the_external_doctor_accepts_what_up_creates(tmp_path, monkeypatch):
    from streamctl.runtimes.external.doctor import min_isr_for

    assert [min_isr_for(r) for r in (1, 2, 3, 5)] == [1, 1, 2, 2]


def test_a_stacks_kafka_layout_cannot_change_in_place(tmp_path):
    from streamctl.errors import PreflightError
    from streamctl.runtimes.local.runtime import KAFKA_LAYOUT, LocalRuntime

    s = settings(tmp_path, **{"kafka.brokers": 3})
    s.stack_dir.mkdir(parents=True)
    (s.stack_dir / KAFKA_LAYOUT).write_text("kafka.brokers 1, kafka.security plaintext")
    with pytest.raises(PreflightError) as error:
        LocalRuntime(s).preflight(None)
    assert "made with kafka.brokers 1" in error.value.message and "down --purge" in error.value.hint
    with pytest.raises(PreflightError) as error:
        LocalRuntime(settings(tmp_path, **{"kafka.replication_factor": 3})).preflight(None)
    assert "needs as many brokers" in error.value.message
