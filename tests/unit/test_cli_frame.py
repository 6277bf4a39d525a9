from __future__ import annotations

import pytest

from streamctl import __version__
from streamctl.cli.app import app
from streamctl.exit_codes import ExitCode
import typer.main


def all_command_names() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == ExitCode.OK
    assert out.strip() == f"streamctl {__version__}"


def test_top_level_help_lists_commands(cli):
    code, out, _ = cli("--help")
    assert code == ExitCode.OK
    for name in all_command_names():
        assert name in out


@pytest.mark.parametrize("name", all_command_names())
def test_every_command_has_help(cli, name):
    code, out, _ = cli(name, "--help")
    assert code == ExitCode.OK
    assert "Usage" in out and name in out


def test_unknown_flag_is_a_usage_error_with_hint(cli):
    code, _, err = cli("fetch-connectors", "--no-such-flag")
    assert code == ExitCode.USAGE
    assert "No such option" in err and "--help" in err
    assert "Traceback" not in err


def test_unknown_command_is_a_usage_error(cli):
    code, _, err = cli("no-such-command")
    assert code == ExitCode.USAGE
    assert "Traceback" not in err


def test_user_error_is_one_line_plus_hint_without_traceback(cli, monkeypatch):
    monkeypatch.setenv("STREAMCTL_PORTS_KAFKA", "not-a-port")
    code, _, err = cli("config")
    assert code == ExitCode.CONFIG_ERROR
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0].startswith("error: ports.kafka") and "STREAMCTL_PORTS_KAFKA" in lines[0]
    assert lines[1].startswith("hint:")
    assert "Traceback" not in err


def test_debug_shows_the_traceback(cli, monkeypatch):
    monkeypatch.setenv("STREAMCTL_PORTS_KAFKA", "not-a-port")
    code, _, err = cli("--debug", "config")
    assert code == ExitCode.CONFIG_ERROR
    assert "Traceback" in err


def test_exit_codes_are_distinct():
    # __members__ includes aliases: iterating the Enum would skip a second name for the same value
    values = [c.value for c in ExitCode.__members__.values()]
    assert len(values) == len(set(values))
    assert ExitCode.OK == 0


def test_completion_is_offered(cli):
    code, out, _ = cli("--help")
    assert "--install-completion" in out


def test_logs_of_an_unknown_service_is_a_usage_error_not_a_bug(cli, tmp_path):
    assert cli("--state-dir", str(tmp_path), "config")[0] == ExitCode.OK
    (tmp_path / "default").mkdir()
    code, _, err = cli("--state-dir", str(tmp_path), "logs", "nosuch")
    assert code == ExitCode.USAGE
    assert "no service named 'nosuch'" in err and "hint: one of:" in err and "kafka" in err


def test_status_of_a_stack_never_created_names_the_ones_that_exist(cli, tmp_path):
    for name in ("demo", "it-edges"):
        (tmp_path / name).mkdir()
    code, out, err = cli("--state-dir", str(tmp_path), "--stack", "nosuch", "status")
    assert code == ExitCode.USAGE
    assert "there is no stack named 'nosuch'" in err and "existing stacks: demo, it-edges" in err
    assert "stopped" not in out


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.0.2.7"])
def test_binding_beyond_loopback_needs_expose(cli, monkeypatch, address):
    monkeypatch.setenv("STREAMCTL_BIND_ADDRESS", address)
    code, _, err = cli("config")
    assert code == ExitCode.CONFIG_ERROR and "no authentication" in err and "expose: true" in err
    monkeypatch.setenv("STREAMCTL_EXPOSE", "true")
    assert cli("config")[0] == ExitCode.OK


@pytest.mark.parametrize("address", ["", "localhost", "not-an-address"])
def test_bind_address_must_be_an_ip_address(cli, monkeypatch, address):
    monkeypatch.setenv("STREAMCTL_BIND_ADDRESS", address)
    code, _, err = cli("config")
    assert code == ExitCode.CONFIG_ERROR and "bind_address must be an IP address" in err


def test_exposure_warning_names_the_unauthenticated_services():
    from streamctl.config import Settings, exposure_warning

    assert exposure_warning(Settings()) is None
    warning = exposure_warning(Settings(bind_address="0.0.0.0", expose=True))
    assert "kafka 9092" in warning and "elasticsearch 9200" in warning and "flink_rest 8081" in warning


def test_status_with_services_down_exits_1(cli, tmp_path):
    (tmp_path / "default").mkdir()
    code, out, _ = cli("--state-dir", str(tmp_path), "status")
    assert code == ExitCode.CHECK_FAILED
    assert "stopped" in out and "Flink job: STOPPED" in out
