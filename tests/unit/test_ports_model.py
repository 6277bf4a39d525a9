"""The ports.* settings come from the stack model (services.PortSpec, with its default) plus streamctl's
own (config.OWN_PORTS): one setting per declared port, each with its STREAMCTL_PORTS_<NAME>
variable, and every `ports.<name>` the code reads is one of them."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from streamctl.config import OWN_PORTS, Ports, Settings, load_settings, setting_names
from streamctl.errors import ConfigError
from streamctl.services import STACK, PortSpec, ServiceSpec, port_defaults

ROOT = Path(__file__).resolve().parents[2]

# The defaults as they were when Ports was a list of its own: moving them into the model kept them.
DEFAULTS = {"kafka": 9092, "kafka_controller": 9093, "flink_rest": 8081, "flink_rpc": 6123, "postgres": 5432,
            "elasticsearch": 9200, "elasticsearch_transport": 9300, "producer": 5000, "kibana": 5601,
            "kafka_ui": 8080, "ui": 8090}


def test_every_declared_port_is_a_setting_with_its_default():
    assert dict(Settings().ports.items()) == DEFAULTS
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
    assert read - methods <= set(DEFAULTS), read - methods - set(DEFAULTS)


def test_ports_copy_compare_and_refuse_unknown_names(tmp_path):
    ports = Ports(kafka=19092)
    assert ports.kafka == 19092 and ports == copy.deepcopy(ports) and ports != Ports()
    with pytest.raises(AttributeError):
        ports.kafkaa  # noqa: B018
    with pytest.raises(AttributeError):
        ports.kafkaa = 1
    with pytest.raises(ConfigError, match="unknown setting 'ports.nope'"):
        load_settings(overrides={"ports.nope": "1"}, env={}, cwd=tmp_path)
