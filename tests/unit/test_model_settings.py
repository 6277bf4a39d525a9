"""Settings the stack model declares, so that a new service needs no edit to config.py: the ports.*
settings (services.PortSpec, with its default, plus streamctl's own config.OWN_PORTS), one per
declared port with its STREAMCTL_PORTS_<NAME> variable, every `ports.<name>` the code reads being
one of them; external.urls.<key>, one per service the model reaches by such a URL; and
docker.images.<key>, one per image the model names, each the compose file's ${<KEY>_IMAGE}."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from streamctl.config import OWN_PORTS, Ports, Settings, load_settings, setting_names
from streamctl.errors import ConfigError
from streamctl.external_access import external_url
from streamctl.paths import STACK_DIR
from streamctl.runtimes.docker.engine import image_key
from streamctl.runtimes.docker.runtime import IMAGE_VARIABLES
from streamctl.services import STACK, Access, PortSpec, ServiceSpec, external_urls, port_defaults

ROOT = Path(__file__).resolve().parents[2]

# The defaults as they were when Ports was a list of its own: moving them into the model kept them.
DEFAULTS = {"kafka": 9092, "kafka_controller": 9093, "flink_rest": 8081, "flink_rpc": 6123, "postgres": 5432,
            "elasticsearch": 9200, "elasticsearch_transport": 9300, "producer": 5000, "kibana": 5601,
            "kafka_ui": 8080, "ui": 8090}


def test_every_declared_port_is_a_setting_with_its_default():
    assert DEFAULTS.items() <= dict(Settings().ports.items()).items()
    assert set(Ports().keys()) == {p.setting for s in STACK for p in s.ports} | set(OWN_PORTS)


def test_no_two_ports_of_the_model_share_a_setting():
    settings = [p.setting for s in STACK for p in s.ports]
    assert len(settings) == len(set(settings)) and not set(settings) & set(OWN_PORTS)


def test_a_new_services_port_is_a_setting_without_touching_config():
    specs = STACK + (ServiceSpec("extra", "a service the model gained", ports=(PortSpec("extra_http", 8085, 8085),)),)
    assert port_defaults(specs)["extra_http"] == 8085


def test_each_port_has_its_environment_variable(tmp_path):
    names = setting_names()
    assert all(f"ports.{name}" in names for name in DEFAULTS)
    settings = load_settings(env={"STREAMCTL_PORTS_KAFKA_UI": "18080"}, cwd=tmp_path)
    assert settings.ports.kafka_ui == 18080 and settings.sources["ports.kafka_ui"].startswith("environment")


def test_every_port_the_code_reads_is_declared():
    read = {m.group(1) for path in (ROOT / "streamctl").rglob("*.py")
            for m in re.finditer(r"\bports\.([a-z_]+)\b", path.read_text())}
    methods = {"items", "keys", "port"}  # Table's own, and PortSpec loops (`for port in spec.ports`)
    assert read - methods <= set(Ports().keys()), read - methods - set(Ports().keys())


def test_ports_copy_compare_and_refuse_unknown_names(tmp_path):
    ports = Ports(kafka=19092)
    assert ports.kafka == 19092 and ports == copy.deepcopy(ports) and ports != Ports()
    with pytest.raises(AttributeError):
        ports.kafkaa  # noqa: B018
    with pytest.raises(AttributeError):
        ports.kafkaa = 1
    with pytest.raises(ConfigError, match="unknown setting 'ports.nope'"):
        load_settings(overrides={"ports.nope": "1"}, env={}, cwd=tmp_path)


EXTRA = ServiceSpec("extra", "a service the model gained", ports=(PortSpec("extra_http", 8085, 8085),),
                    access=Access("Extra", 8, "extra_http", external="urls.extra"))


def test_a_url_the_model_names_is_an_external_urls_setting(monkeypatch, tmp_path):
    assert external_urls(STACK + (EXTRA,)) == [*external_urls(), "extra"]
    monkeypatch.setattr("streamctl.config.external_urls", lambda: external_urls(STACK + (EXTRA,)))
    assert "external.urls.extra" in setting_names()
    settings = load_settings(env={"STREAMCTL_EXTERNAL_URLS_EXTRA": "http://extra.example:8085/"}, cwd=tmp_path)
    assert external_url(settings, "urls.extra") == "http://extra.example:8085"
    with pytest.raises(ConfigError, match="external.urls.extra is not set"):
        external_url(Settings(), "urls.extra")
    with pytest.raises(ConfigError, match="unknown setting 'external.urls.other'"):
        load_settings(overrides={"external.urls.other": "http://h:1"}, env={}, cwd=tmp_path)


def test_each_image_the_model_names_is_a_setting_and_a_compose_variable(tmp_path):
    in_compose = set(re.findall(r"\$\{(\w+_IMAGE):-", (STACK_DIR / "compose.yaml").read_text()))
    assert set(IMAGE_VARIABLES.values()) == in_compose
    assert set(Settings().docker.images.keys()) == set(IMAGE_VARIABLES) >= {
        "kafka", "postgres", "elasticsearch", "kibana", "kafka_ui", "flink_base", "python_base"}
    settings = load_settings(env={"STREAMCTL_DOCKER_IMAGES_KAFKA_UI": "mirror.example/kafka-ui:1"}, cwd=tmp_path)
    assert settings.docker.images.kafka_ui == "mirror.example/kafka-ui:1"
    assert image_key("kafka-ui") == "kafka_ui" and image_key("flink-taskmanager") == "flink_base"
