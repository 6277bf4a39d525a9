from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from streamctl.config import Settings, env_name, load_settings, setting_names
from streamctl.errors import ConfigError
from streamctl.exit_codes import ExitCode


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "streamctl.yaml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_env(tmp_path):
    settings = load_settings(env={}, cwd=tmp_path)
    assert settings.ports.kafka == 9092
    assert settings.flink.window_seconds == 60
    assert settings.sources == {}


def test_precedence_default_file_env_flag(tmp_path):
    write(tmp_path, "ports:\n  kafka: 19092\n  producer: 15000\nstack_name: fromfile\nflink:\n  window_seconds: 10\n")
    env = {"STREAMCTL_PORTS_PRODUCER": "25000", "STREAMCTL_STACK_NAME": "fromenv"}
    settings = load_settings(env=env, cwd=tmp_path, overrides={"stack_name": "fromflag", "ports.kafka": None})
    assert settings.ports.kafka == 19092  # file (flag not given)
    assert settings.ports.producer == 25000  # env beats file
    assert settings.stack_name == "fromflag"  # flag beats env
    assert settings.flink.window_seconds == 10
    assert settings.ports.postgres == 5432  # default
    assert settings.sources["ports.producer"] == "environment variable STREAMCTL_PORTS_PRODUCER"


def test_explicit_config_file(tmp_path):
    other = tmp_path / "elsewhere.yaml"
    other.write_text("kafka:\n  partitions: 8\n")
    assert load_settings(config_file=other, env={}, cwd=tmp_path).kafka.partitions == 8


def test_missing_explicit_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config_file=tmp_path / "nope.yaml", env={}, cwd=tmp_path)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("portz:\n  kafka: 1\n", "unknown setting 'portz'"),
        ("ports:\n  kafkaa: 1\n", "unknown setting 'ports.kafkaa'"),
        ("ports:\n  kafka: 'x'\n", "ports.kafka"),
        ("ports:\n  kafka: true\n", "ports.kafka"),
        ("ports: 5\n", "ports in"),
        ("flink:\n  window_seconds: 1.5\n", "flink.window_seconds"),
        ("runtime: kubernetes\n", "runtime must be"),
        ("ports:\n  kafka: 70000\n", "between 1 and 65535"),
        ("ports:\n  kafka: 5000\n", "both 5000"),
        ("[unclosed\n", "not valid YAML"),
        ("- a\n- b\n", "must hold a mapping"),
    ],
)
def test_file_errors_name_key_and_file(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, cwd=tmp_path)
    assert fragment in info.value.message
    if "unknown" in fragment or "ports.kafka" in fragment:
        assert str(path) in info.value.message


def test_env_errors(tmp_path):
    with pytest.raises(ConfigError, match="STREAMCTL_PORTS_KAFKAA"):
        load_settings(env={"STREAMCTL_PORTS_KAFKAA": "1"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="must be an integer"):
        load_settings(env={"STREAMCTL_KAFKA_PARTITIONS": "many"}, cwd=tmp_path)


def test_env_parses_bool_float_path(tmp_path):
    settings = load_settings(
        env={"STREAMCTL_LOAD_MAX_FAILURE_RATIO": "0.5", "STREAMCTL_STATE_DIR": "~/x"}, cwd=tmp_path
    )
    assert settings.load.max_failure_ratio == 0.5
    assert settings.state_dir == Path("~/x").expanduser()


def test_every_setting_has_an_env_name():
    names = setting_names()
    assert "ports.kafka" in names and "stack_name" in names
    assert len({env_name(n) for n in names}) == len(names)
    assert env_name("ports.kafka") == "STREAMCTL_PORTS_KAFKA"


def test_stack_dir_is_per_stack(tmp_path):
    settings = Settings(state_dir=tmp_path, stack_name="a")
    assert settings.stack_dir == tmp_path / "a"


def test_config_command_prints_effective_values(cli, tmp_path):
    write(tmp_path, "ports:\n  kafka: 19092\n")
    code, out, _ = cli("--stack", "blue", "config", "--json")
    assert code == ExitCode.OK
    values = json.loads(out)
    assert values["ports.kafka"] == 19092 and values["stack_name"] == "blue"


def test_config_command_reports_bad_file(cli, tmp_path):
    write(tmp_path, "nonsense: 1\n")
    code, _, err = cli("config")
    assert code == ExitCode.CONFIG_ERROR
    assert "nonsense" in err and "streamctl.yaml" in err


@pytest.mark.parametrize("key, value", [
    ("producer.heartbeat_interval_ms", 0), ("flink.watermark_delay_seconds", -5), ("flink.watermark_delay_seconds", 0),
    ("flink.checkpoint_interval_seconds", 0),
    ("flink.dedup_minutes", 0), ("flink.dedup_minutes", 100000), ("producer.workers", 0), ("load.max_failure_ratio", 7),
])
def test_out_of_range_settings_name_the_key_value_and_range(tmp_path, key, value):
    section, name = key.split(".")
    path = tmp_path / "streamctl.yaml"
    path.write_text(f"{section}:\n  {name}: {value}\n")
    with pytest.raises(ConfigError, match=rf"{key} must be between .* got {value}"):
        load_settings(config_file=path, env={})


@pytest.mark.parametrize("section, name, value", [
    ("kafka", "topic", "my topic"), ("kafka", "topic", "t" * 250), ("kafka", "aggregates_topic", "a/b"),
    ("kafka", "topic", ".."), ("elasticsearch", "index", "Upper"), ("elasticsearch", "index", "_hidden"),
    ("elasticsearch", "index", "a*b"),
])
def test_names_the_broker_or_elasticsearch_would_refuse_are_config_errors(tmp_path, section, name, value):
    path = tmp_path / "streamctl.yaml"
    path.write_text(yaml.safe_dump({section: {name: value}}))
    with pytest.raises(ConfigError, match=rf"{section}.{name} .* is not a valid name"):
        load_settings(config_file=path, env={})


@pytest.mark.parametrize("section, name, value", [
    ("kafka", "topic", "edges-silent-1a2b3c4d"), ("kafka", "topic", "bench.validate_1"),
    ("elasticsearch", "index", "transactions-aggregated"),
])
def test_ordinary_names_are_accepted(tmp_path, section, name, value):
    path = tmp_path / "streamctl.yaml"
    path.write_text(yaml.safe_dump({section: {name: value}}))
    assert getattr(getattr(load_settings(config_file=path, env={}), section), name) == value
