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
    values = [c.value for c in ExitCode]
    assert len(values) == len(set(values))
    assert ExitCode.OK == 0


def test_completion_is_offered(cli):
    code, out, _ = cli("--help")
    assert "--install-completion" in out
