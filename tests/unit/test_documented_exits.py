"""Documented claims about exits and preflight that need no running service: exit 70 for a bug, 130 for
Ctrl-C, the memory and disk preflight, stale pid files cleaned."""

from __future__ import annotations

import json
import subprocess

import pytest

from streamctl.config import Settings
from streamctl.errors import PreflightError
from streamctl.exit_codes import ExitCode
from streamctl.machine import preflight
from streamctl.machine.supervisor import Supervisor


def test_a_bug_exits_70_with_one_line_and_no_traceback(cli, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("streamctl.config.Settings.flat", broken)
    code, out, err = cli("config")
    assert code == ExitCode.INTERNAL_ERROR == 70
    assert "internal error: RuntimeError: boom" in err and "--debug" in err and "Traceback" not in err + out


def test_ctrl_c_exits_130(cli, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("streamctl.config.Settings.flat", interrupted)
    code, _, err = cli("config")
    assert code == ExitCode.INTERRUPTED == 130 and "Traceback" not in err


def test_memory_preflight_names_what_is_available_and_what_is_needed(monkeypatch):
    monkeypatch.setattr(preflight, "mem_available_bytes", lambda: 1024**3)
    with pytest.raises(PreflightError, match=r"only 1.0 GiB of memory available; the stack needs about \d") as info:
        preflight.check_memory(Settings())
    assert "heap_mb" in info.value.hint and info.value.exit_code == ExitCode.PREFLIGHT_FAILED
    monkeypatch.setattr(preflight, "mem_available_bytes", lambda: 64 * 1024**3)
    preflight.check_memory(Settings())


def test_disk_preflight_names_the_free_space(monkeypatch, tmp_path):
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: type("U", (), {"free": 512 * 1024**2})())
    with pytest.raises(PreflightError, match=r"only 0.5 GiB free under .*; the stack needs 2 GiB"):
        preflight.check_disk(tmp_path / "not" / "yet")


def test_a_stale_pid_file_is_removed_not_trusted(tmp_path):
    supervisor = Supervisor(tmp_path / "run", tmp_path / "log")
    process = subprocess.Popen(["true"])
    process.wait()
    (tmp_path / "run").mkdir()
    stale = supervisor.pid_file("kafka")
    stale.write_text(json.dumps({"pid": process.pid, "start_ticks": 1, "started_at": 0, "argv": ["x"]}))
    assert supervisor.record("kafka") is None and not stale.exists()
    # a live pid whose start time differs (the pid was reused) is not ours either
    stale.write_text(json.dumps({"pid": 1, "start_ticks": 123456789, "started_at": 0, "argv": ["x"]}))
    assert supervisor.record("kafka") is None and not stale.exists()
