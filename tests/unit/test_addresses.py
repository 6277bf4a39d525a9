"""What `up` prints is derived from the stack model's access declarations (services.Access): the same
lines, in the same order, on every runtime as before the model held them."""

from __future__ import annotations

from streamctl.config import load_settings
from streamctl.endpoints import Endpoints, external_endpoints
from streamctl.runtimes.docker.runtime import DockerRuntime
from streamctl.runtimes.external.runtime import ExternalRuntime
from streamctl.runtimes.local.runtime import LocalRuntime
from streamctl.secrets import Secrets

CORE = {"Flink UI": "http://127.0.0.1:8081", "producer API": "http://127.0.0.1:5000",
        "Elasticsearch": "http://127.0.0.1:9200", "PostgreSQL": "127.0.0.1:5432"}


def settings(tmp_path, **overrides):
    return load_settings(env={}, cwd=tmp_path, overrides={"state_dir": str(tmp_path), **overrides})


def printed(runtime) -> list[tuple[str, str]]:
    return list(runtime.addresses().items())


def test_the_local_runtime_prints_the_clusters_and_the_producer(tmp_path, monkeypatch):
    s = settings(tmp_path)
    runtime = LocalRuntime(s)
    monkeypatch.setattr(runtime, "endpoints", lambda: Endpoints.of(s, Secrets("pw")))
    assert printed(runtime) == [*CORE.items(), ("Kafka", "127.0.0.1:9092 over PLAINTEXT")]


def test_the_docker_runtime_adds_what_only_it_runs_unless_left_out(tmp_path):
    assert printed(DockerRuntime(settings(tmp_path))) == [
        *CORE.items(), ("Kafka", "127.0.0.1:9092"), ("Kibana", "http://127.0.0.1:5601"),
        ("Kafka UI", "http://127.0.0.1:8080")]
    left_out = DockerRuntime(settings(tmp_path, **{"docker.disabled_services": "kafka-ui"}))
    assert [label for label, _ in printed(left_out)][-1] == "Kibana"


def test_the_external_runtime_prints_someone_elses_clusters(tmp_path, monkeypatch):
    s = settings(tmp_path, runtime="external", **{
        "external.kafka.bootstrap_servers": "k1:9096", "external.flink.rest_url": "http://jm:8081/",
        "external.postgres.dsn": "postgresql://app@db:5433/shop", "external.elasticsearch.url": "https://es:9243"})
    runtime = ExternalRuntime(s)
    monkeypatch.setattr(runtime, "endpoints", lambda: external_endpoints(s))
    assert printed(runtime) == [("Flink UI", "http://jm:8081"), ("producer API", "http://127.0.0.1:5000"),
                                ("Elasticsearch", "https://es:9243"), ("PostgreSQL", "postgresql://app@db:5433/shop"),
                                ("Kafka", "k1:9096 over PLAINTEXT")]
    assert external_endpoints(s).kibana_url == ""
