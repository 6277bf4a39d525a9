"""Readiness is declared once, in the stack model (services.Readiness): the local runtime's poll asks
what it declares, and stack/compose.yaml's healthchecks test the same thing inside the network."""

from __future__ import annotations

import re
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from streamctl.config import load_settings
from streamctl.runtimes.docker.runtime import DockerRuntime
from streamctl.runtimes.local import base
from streamctl.runtimes.local.elasticsearch import Elasticsearch
from streamctl.runtimes.local.flink import FlinkJobManager
from streamctl.runtimes.local.python_apps import Producer
from streamctl.secrets import Secrets
from streamctl.services import COMMAND, HTTP, SERVICE, STACK, by_name

URL = re.compile(r"http://localhost:(\d+)(/[^'\"\s|>]*)")


def _query(path: str) -> tuple[str, dict]:
    parts = urlsplit(path)
    # the wait inside the request (?timeout=) is each side's own: one attempt's budget differs
    return parts.path, {k: v for k, v in parse_qs(parts.query).items() if k != "timeout"}


def test_each_compose_healthcheck_tests_what_the_model_declares(tmp_path):
    settings = load_settings(env={"STREAMCTL_STATE_DIR": str(tmp_path)}, cwd=tmp_path)
    project = DockerRuntime(settings).project(Secrets("pw"))
    checked = set()
    for spec in STACK:
        if spec.kind != SERVICE or spec.name not in project.services:
            continue
        test = project.services[spec.name].healthcheck.test
        ready = spec.ready
        if ready.kind == HTTP:
            in_network = next(p.in_network for p in spec.ports if p.setting == ready.port)
            asked = [(int(port), _query(path)) for port, path in URL.findall(" ".join(test))]
            assert (in_network, _query(ready.path)) in asked, f"{spec.name}: {test} does not ask {ready.path}"
            checked.add(spec.name)
        elif ready.kind == COMMAND:
            assert tuple(test) == ("CMD", *ready.command), spec.name
            checked.add(spec.name)
    assert checked == {"elasticsearch", "flink-jobmanager", "producer", "indexer", "kibana", "kafka-ui"}


def _local(cls, tmp_path, **ports):
    settings = SimpleNamespace(ports=SimpleNamespace(**ports))
    ctx = SimpleNamespace(service_dir=lambda name: tmp_path / name, host="127.0.0.1", settings=settings)
    service = cls.__new__(cls)
    base.LocalService.__init__(service, ctx, by_name()[cls.name])
    if cls is FlinkJobManager:
        service.cluster = SimpleNamespace(rest_url=f"http://127.0.0.1:{ports['flink_rest']}")
    return service


@pytest.mark.parametrize("cls, ports, url, timeout_s, answer, said", [
    (Producer, {"producer": 5000}, "http://127.0.0.1:5000/health", 2, (200, {}), (True, "/health answered 200")),
    (Producer, {"producer": 5000}, "http://127.0.0.1:5000/health", 2, (503, {}), (False, "/health answered 503")),
    (Elasticsearch, {"elasticsearch": 9200},
     "http://127.0.0.1:9200/_cluster/health?wait_for_status=yellow&timeout=1s", 3, (200, {"status": "yellow"}),
     (True, "cluster yellow")),
    (Elasticsearch, {"elasticsearch": 9200},
     "http://127.0.0.1:9200/_cluster/health?wait_for_status=yellow&timeout=1s", 3, (408, {}),
     (False, "cluster health answered 408")),
    (FlinkJobManager, {"flink_rest": 8081}, "http://127.0.0.1:8081/overview", 2, (200, {"flink-version": "1.20.5"}),
     (True, "Flink 1.20.5 REST up")),
    (FlinkJobManager, {"flink_rest": 8081}, "http://127.0.0.1:8081/overview", 2, (500, None),
     (False, "http://127.0.0.1:8081 not answering")),
    (FlinkJobManager, {"flink_rest": 8081}, "http://127.0.0.1:8081/overview", 2, OSError("refused"),
     (False, "http://127.0.0.1:8081 not answering")),
    (Producer, {"producer": 5000}, "http://127.0.0.1:5000/health", 2, OSError("refused"),
     (False, "http://127.0.0.1:5000: refused")),
])
def test_the_local_poll_asks_the_declared_path_and_says_what_it_said_before(
        tmp_path, monkeypatch, cls, ports, url, timeout_s, answer, said):
    asked = []

    def http_json(u, t):
        asked.append((u, t))
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(base, "http_json", http_json)
    assert _local(cls, tmp_path, **ports).ready() == said
    assert asked == [(url, timeout_s)]


def test_the_job_in_the_containers_network_reaches_kafka_and_postgresql_where_compose_yaml_says(tmp_path):
    from streamctl.services import in_network

    settings = load_settings(env={"STREAMCTL_STATE_DIR": str(tmp_path)}, cwd=tmp_path)
    assert in_network("kafka") == ("kafka", 19092) and in_network("postgres") == ("postgres", 5432)
    kafka_env = dict(DockerRuntime(settings).project(Secrets("pw")).services["kafka"].environment)
    assert "INTERNAL://kafka:19092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    runtime = DockerRuntime(settings)
    ctx = SimpleNamespace(secrets=Secrets("pw"))
    config = runtime.job_config(ctx)  # type: ignore[arg-type]
    assert config.kafka_bootstrap == "kafka:19092" and "//postgres:5432/" in config.jdbc_url


def test_a_tcp_readiness_is_a_port_that_accepts(tmp_path, monkeypatch):
    import dataclasses

    from streamctl.services import TCP, Readiness

    service = _local(Producer, tmp_path, producer=5000)
    service.spec = dataclasses.replace(service.spec, ready=Readiness("accepts", TCP, "producer"))
    monkeypatch.setattr(base, "tcp_open", lambda host, port: port == 5000)
    assert service.ready() == (True, "127.0.0.1:5000 accepts connections")
    monkeypatch.setattr(base, "tcp_open", lambda host, port: False)
    assert service.ready() == (False, "127.0.0.1:5000 not listening yet")
