"""The compose reader: interpolation, parsing, validation and ordering (no Docker needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from streamctl.config import load_settings
from streamctl.paths import STACK_DIR
from streamctl.runtimes.docker import compose
from streamctl.runtimes.docker.compose import (COMPLETED, HEALTHY, STARTED, ComposeError, interpolate, parse_duration,
                                               parse_port, parse_project, parse_size)
from streamctl.runtimes.docker.runtime import DockerRuntime, compose_variables, kafka_cluster_id
from streamctl.secrets import Secrets
from streamctl.services import DependencyCycle

VARS = {"A": "alpha", "EMPTY": ""}


@pytest.mark.parametrize("text, expected", [
    ("plain", "plain"),
    ("$A", "alpha"),
    ("${A}", "alpha"),
    ("x${A}y$A.z", "xalphayalpha.z"),
    ("${MISSING:-fallback}", "fallback"),
    ("${EMPTY:-fallback}", "fallback"),
    ("${EMPTY-fallback}", ""),
    ("${MISSING-fallback}", "fallback"),
    ("${A:+set}", "set"),
    ("${EMPTY:+set}", ""),
    ("${EMPTY+set}", "set"),
    ("${MISSING:-${A}}", "alpha"),
    ("${MISSING:-${ALSO_MISSING:-deep}}", "deep"),
    ("$$A costs $$5", "$A costs $5"),
])
def test_interpolation(text, expected):
    assert interpolate(text, VARS) == expected


@pytest.mark.parametrize("text, message", [
    ("${MISSING}", "variable MISSING is not set"),
    ("$MISSING", "variable MISSING is not set"),
    ("${MISSING:?give it a value}", "MISSING: give it a value"),
    ("${EMPTY:?must not be empty}", "EMPTY: must not be empty"),
    ("${A", "unclosed"),
    ("${1A}", "invalid variable expression"),
    ("cost: $ 5", "lone \\$"),
])
def test_interpolation_errors(text, message):
    with pytest.raises(ComposeError, match=message):
        interpolate(text, VARS, "services.x.environment.Y")


@pytest.mark.parametrize("value, seconds", [("5s", 5), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), (7, 7)])
def test_durations(value, seconds):
    assert parse_duration(value, "x") == seconds


def test_bad_duration():
    with pytest.raises(ComposeError, match="not a duration"):
        parse_duration("5 seconds", "services.a.healthcheck.interval")


@pytest.mark.parametrize("value, size", [("512m", 512 * 2**20), ("1g", 2**30), ("64k", 65536), (1000, 1000), ("2gb", 2 * 2**30)])
def test_sizes(value, size):
    assert parse_size(value, "x") == size


@pytest.mark.parametrize("value, port", [
    ("127.0.0.1:29092:9092", compose.Port(9092, 29092, "127.0.0.1")),
    ("8080:80", compose.Port(80, 8080)),
    ("5432", compose.Port(5432, None)),
    ("127.0.0.1:53:53/udp", compose.Port(53, 53, "127.0.0.1", "udp")),
    ({"target": 80, "published": 8080, "host_ip": "127.0.0.1"}, compose.Port(80, 8080, "127.0.0.1")),
])
def test_ports(value, port):
    assert parse_port(value, "x") == port


def project(services: dict, volumes: dict | None = None, disabled=()):
    data = {"services": services}
    if volumes is not None:
        data["volumes"] = volumes
    return parse_project(data, VARS, Path("/tmp"), "test.yaml", "demo", disabled)


def test_conditions_and_required_states():
    p = project({
        "db": {"image": "db", "healthcheck": {"test": ["CMD", "true"], "interval": "1s"}},
        "migrate": {"image": "tool", "depends_on": {"db": {"condition": HEALTHY}}},
        "app": {"image": "app", "depends_on": {"migrate": {"condition": COMPLETED}, "db": {"condition": STARTED}}},
        "sidecar": {"image": "s", "depends_on": ["app"]},
    })
    order = p.start_order()
    assert order.index("db") < order.index("migrate") < order.index("app") < order.index("sidecar")
    assert p.required_state("db") == HEALTHY
    assert p.required_state("migrate") == COMPLETED
    assert p.required_state("app") == STARTED
    assert dict(p.services["app"].depends_on) == {"migrate": COMPLETED, "db": STARTED}


def test_cycle_is_named():
    with pytest.raises(DependencyCycle, match="a -> b -> a"):
        project({"a": {"image": "x", "depends_on": ["b"]}, "b": {"image": "x", "depends_on": ["a"]}})


@pytest.mark.parametrize("services, message", [
    ({"a": {"image": "x", "depends_on": ["ghost"]}}, "unknown service 'ghost'"),
    ({"a": {"image": "x"}, "b": {"image": "x", "depends_on": {"a": {"condition": HEALTHY}}}}, "a has no healthcheck"),
    ({"a": {"image": "x", "depends_on": {"a2": {"condition": "service_ready"}}}, "a2": {"image": "x"}}, "not one of"),
    ({"a": {"image": "x", "privileged": True}}, "privileged is not supported"),
    ({"a": {"command": "true"}}, "neither image: nor build:"),
    ({"a": {"image": "x", "volumes": ["undeclared:/data"]}}, "not declared"),
    ({"a": {"image": "x", "ports": ["nine:80"]}}, "not a port mapping"),
    ({"a": {"image": "x", "environment": ["NOEQUALS"]}}, "not KEY=VALUE"),
])
def test_invalid_projects(services, message):
    with pytest.raises(ComposeError, match=message):
        project(services)


def test_disabling_a_service_needed_by_another_is_an_error():
    services = {"a": {"image": "x"}, "b": {"image": "y", "depends_on": ["a"]}}
    with pytest.raises(ComposeError, match="b depends on a, which is disabled"):
        project(services, disabled=("a",))
    assert list(project(services, disabled=("b",)).services) == ["a"]
    with pytest.raises(ComposeError, match="no such service"):
        project(services, disabled=("c",))


def test_config_hash_follows_configuration_and_image():
    base = {"image": "x", "environment": {"K": "1"}, "volumes": ["data:/data"]}
    one = project({"a": base}, {"data": None}).services["a"]
    same = project({"a": dict(base)}, {"data": None}).services["a"]
    changed = project({"a": {**base, "environment": {"K": "2"}}}, {"data": None}).services["a"]
    assert one.config_hash("sha256:1") == same.config_hash("sha256:1")
    assert one.config_hash("sha256:1") != changed.config_hash("sha256:1")
    assert one.config_hash("sha256:1") != one.config_hash("sha256:2")  # a rebuilt image recreates


def test_environment_list_and_mapping_forms_agree():
    a = project({"a": {"image": "x", "environment": {"K": 1, "B": True}}}).services["a"]
    b = project({"a": {"image": "x", "environment": ["K=1", "B=true"]}}).services["a"]
    assert a.environment == b.environment


def test_x_extensions_are_neither_interpolated_nor_rejected():
    p = parse_project({"x-note": "${NOT_SET}", "services": {"a": {"image": "x", "x-anything": "${ALSO_NOT}"}}},
                      {}, Path("/tmp"))
    assert list(p.services) == ["a"]


def stack_settings(tmp_path, **env):
    return load_settings(env={"STREAMCTL_STATE_DIR": str(tmp_path), **env}, cwd=tmp_path)


def test_the_stack_compose_file_parses_with_streamctl_variables(tmp_path):
    settings = stack_settings(tmp_path)
    runtime = DockerRuntime(settings)
    p = runtime.project(Secrets("pw"))
    assert set(p.services) == {"kafka", "postgres", "elasticsearch", "flink-jobmanager", "flink-taskmanager", "producer",
                               "indexer", "kibana", "kafka-ui"}
    # Ports and dependencies come from the stack model: the producer waits for the broker (through the
    # topics step), the indexer for the broker and Elasticsearch, each healthy.
    assert dict(p.services["producer"].depends_on) == {"kafka": HEALTHY}
    assert dict(p.services["indexer"].depends_on) == {"kafka": HEALTHY, "elasticsearch": HEALTHY}
    assert p.services["kafka"].ports == (compose.Port(9092, 9092, "127.0.0.1"),)  # not the controller's
    assert p.services["flink-jobmanager"].ports == (compose.Port(8081, 8081, "127.0.0.1"),)
    for service in p.services.values():
        assert service.healthcheck is not None, f"{service.name} has no healthcheck"
        for port in service.ports:
            assert port.host_ip == "127.0.0.1", f"{service.name} publishes {port} beyond loopback"
    kafka_env = dict(p.services["kafka"].environment)
    assert kafka_env["KAFKA_ADVERTISED_LISTENERS"] == "INTERNAL://kafka:19092,HOST://127.0.0.1:9092"
    assert dict(p.services["postgres"].environment)["POSTGRES_PASSWORD"] == "pw"
    assert p.services["flink-jobmanager"].build.stage == "connectors"


def test_image_overrides_and_disabled_services_come_from_settings(tmp_path):
    settings = stack_settings(tmp_path, STREAMCTL_DOCKER_IMAGES_KAFKA="mirror.example/kafka:4.1.1",
                              STREAMCTL_DOCKER_IMAGES_FLINK_BASE="local/flink:1.20",
                              STREAMCTL_DOCKER_DISABLED_SERVICES="kibana, kafka-ui",
                              STREAMCTL_PORTS_KAFKA="29092", STREAMCTL_BIND_ADDRESS="0.0.0.0",
                              STREAMCTL_EXPOSE="true")
    p = DockerRuntime(settings).project(Secrets("pw"))
    assert p.services["kafka"].image == "mirror.example/kafka:4.1.1"
    assert dict(p.services["flink-jobmanager"].build.args)["FLINK_BASE_IMAGE"] == "local/flink:1.20"
    assert "kibana" not in p.services and "kafka-ui" not in p.services
    assert p.services["kafka"].ports[0] == compose.Port(9092, 29092, "0.0.0.0")
    # Clients on this machine follow the advertised address: loopback even when bound to every interface.
    assert "HOST://127.0.0.1:29092" in dict(p.services["kafka"].environment)["KAFKA_ADVERTISED_LISTENERS"]


def test_pinned_image_defaults_live_only_in_the_compose_file(tmp_path):
    variables = compose_variables(stack_settings(tmp_path), Secrets("pw"), "streamctl-default")
    assert not any(name.endswith("_IMAGE") for name in variables)  # nothing set: the file's defaults apply
    text = (STACK_DIR / "compose.yaml").read_text()
    for default in ("apache/kafka:4.1.1", "postgres:17", "flink:1.20.5-java17"):
        assert default in text


def test_kafka_cluster_id_is_a_stable_base64_uuid():
    cluster_id = kafka_cluster_id("streamctl-default")
    assert cluster_id == kafka_cluster_id("streamctl-default") != kafka_cluster_id("streamctl-other")
    assert len(cluster_id) == 22
    for n in range(2000):  # 1 in 64 plain ids would start with '-', which a command line reads as a flag
        assert not kafka_cluster_id(f"p{n}").startswith("-")


def test_random_local_cluster_ids_never_look_like_flags():
    from streamctl.runtimes.local.kafka import random_cluster_id

    assert not any(random_cluster_id().startswith("-") for _ in range(2000))


# -- Kibana's saved objects: checked for structure, since no Kibana can run here --------------------

def test_kibana_saved_objects_reference_each_other_and_the_index_mapping():
    from streamctl.kibana import DASHBOARD_ID, saved_objects

    objects = saved_objects()
    by_id = {(o["type"], o["id"]): o for o in objects}
    assert len(by_id) == len(objects), "duplicate saved object ids"
    mapping = json.loads((STACK_DIR / "elasticsearch" / "index-template.json").read_text())["template"]["mappings"]["properties"]
    (data_view,) = [o for o in objects if o["type"] == "index-pattern"]
    assert data_view["attributes"]["timeFieldName"] == "@timestamp" and "@timestamp" in mapping
    assert data_view["attributes"]["title"].rstrip("*") == "transactions-aggregated"
    for obj in objects:
        for ref in obj.get("references", []):
            assert (ref["type"], ref["id"]) in by_id, f"{obj['id']} references missing {ref}"
    visualizations = [o for o in objects if o["type"] == "visualization"]
    titles = {v["attributes"]["title"] for v in visualizations}
    assert titles == {"Revenue by category", "Sales by payment method", "Revenue over time"}
    for vis in visualizations:
        state = json.loads(vis["attributes"]["visState"])
        for agg in state["aggs"]:
            field = agg["params"].get("field")
            assert field is None or field in mapping, f"{vis['id']} aggregates unknown field {field}"
    dashboard = by_id[("dashboard", DASHBOARD_ID)]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in dashboard["references"]}
    assert {refs[p["panelRefName"]]["id"] for p in panels} == {v["id"] for v in visualizations}


def test_compose_file_is_plain_yaml_with_pinned_images():
    data = yaml.safe_load((STACK_DIR / "compose.yaml").read_text())
    for name, service in data["services"].items():
        image = service["image"]
        assert ":latest" not in image and (":" in image.split("/")[-1] or "${" in image), f"{name}: unpinned {image}"


# -- user errors of the docker runtime, through the CLI -------------------------------------------

def test_no_docker_engine_is_one_line_and_exit_4(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    code, out, err = cli("--state-dir", str(tmp_path), "up", "--runtime", "docker")
    assert code == 4
    assert "error: no Docker engine answers" in err and "hint:" in err and "Traceback" not in err


def test_a_broken_compose_file_names_the_file_and_line(tmp_path):
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  kafka:\n    image: [unclosed\n")
    runtime = DockerRuntime(stack_settings(tmp_path, STREAMCTL_DOCKER_COMPOSE_FILE=str(broken)))
    with pytest.raises(ComposeError, match=r"compose.yaml line \d+ is not valid YAML"):
        runtime.project(Secrets("pw"))


def test_a_kept_volume_whose_password_no_longer_matches_gets_a_hint():
    from streamctl.runtimes.docker.engine import exit_hint

    log = 'psycopg2.OperationalError: FATAL:  password authentication failed for user "streamctl"'
    assert "down --purge" in exit_hint("init", 1, False, log)
    assert "out-of-memory" in exit_hint("kafka", 137, False, "")
    assert exit_hint("kafka", 1, False, "something else") == "see `streamctl logs kafka`"
