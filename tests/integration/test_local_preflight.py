"""Preflight failures: one line naming the problem and the fix, exit 4, and nothing started."""

from __future__ import annotations

import os
import shutil
import socket

import pytest

from streamctl.exit_codes import ExitCode
from tests.integration.stackutil import TEST_PORTS, cli, make_stack_config, settings_of

pytestmark = pytest.mark.integration


def assert_nothing_started(config):
    settings = settings_of(config)
    run_dir = settings.stack_dir / "run"
    assert not run_dir.exists() or not list(run_dir.glob("*.pid"))


def test_port_taken_names_port_holder_and_setting(capsys):
    config = make_stack_config("preflight-port")
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", TEST_PORTS["kafka"]))
    holder.listen()
    try:
        code = cli(config, "up", "--runtime", "local")
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert code == ExitCode.PREFLIGHT_FAILED
    assert f"port {TEST_PORTS['kafka']} (ports.kafka) is already in use" in err
    assert f"held by pid {os.getpid()}" in err
    assert "STREAMCTL_PORTS_KAFKA" in err
    assert "Traceback" not in err
    assert_nothing_started(config)


def test_no_java_on_path(capsys, monkeypatch):
    config = make_stack_config("preflight-java")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    code = cli(config, "up", "--runtime", "local")
    err = capsys.readouterr().err
    assert code == ExitCode.PREFLIGHT_FAILED
    assert "no Java found" in err and "hint:" in err
    assert_nothing_started(config)


def test_a_java_runtime_without_a_compiler(capsys, tmp_path):
    jre = tmp_path / "jre"
    (jre / "bin").mkdir(parents=True)
    (jre / "bin" / "java").symlink_to(os.path.realpath(shutil.which("java")))  # a runtime: java, no javac
    config = make_stack_config("preflight-jre", java_home=str(jre))
    code = cli(config, "up", "--runtime", "local")
    err = capsys.readouterr().err
    assert code == ExitCode.PREFLIGHT_FAILED
    assert "without a compiler (bin/javac)" in err and "openjdk-17-jdk-headless" in err
    assert "Traceback" not in err
    assert_nothing_started(config)


def test_missing_postgres_binaries(capsys, tmp_path):
    config = make_stack_config("preflight-pg", postgres={"bin_dir": str(tmp_path / "no-postgres-here")})
    code = cli(config, "up", "--runtime", "local")
    err = capsys.readouterr().err
    assert code == ExitCode.PREFLIGHT_FAILED
    assert "has no postgres and initdb binaries" in err and "postgres.bin_dir" in err
    assert_nothing_started(config)
