"""The local runtime's start wait: a service whose process exits fails at once with its log's tail; one
that hangs fails at its ceiling. Real processes under the real supervisor."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

from streamctl.config import load_settings
from streamctl.errors import StartupError
from streamctl.runtimes.local.base import Launch, LocalService
from streamctl.runtimes.local.runtime import LocalRuntime
from streamctl.services import by_name


class Scripted(LocalService):
    """The producer's place in the stack, run as a shell script that never becomes ready."""

    def __init__(self, tmp_path, script: str, ceiling_s: float):
        super().__init__(SimpleNamespace(service_dir=lambda name: tmp_path / name), by_name()["producer"])
        self.script, self.start_timeout_s = script, ceiling_s

    def launch(self) -> Launch:
        return Launch(("sh", "-c", self.script), dict(os.environ), self.dir.parent)

    def ready(self):
        return False, "not yet"


def start(tmp_path, monkeypatch, service: Scripted) -> tuple[StartupError, float]:
    runtime = LocalRuntime(load_settings(env={"STREAMCTL_STATE_DIR": str(tmp_path)}, cwd=tmp_path))
    monkeypatch.setattr(runtime, "service", lambda name: service)
    started = time.monotonic()
    try:
        with pytest.raises(StartupError) as caught:
            runtime.start(by_name()["producer"])
        return caught.value, time.monotonic() - started
    finally:
        runtime.supervisor.stop("producer", timeout_s=5)


def test_a_service_that_exits_while_starting_fails_at_once_with_its_log(tmp_path, monkeypatch):
    error, took = start(tmp_path, monkeypatch, Scripted(tmp_path, "echo 'fatal: port in use'; exit 3", 20))
    assert "producer exited while starting" in error.message
    assert "fatal: port in use" in error.details
    assert took < 10  # not the 20 s ceiling


def test_a_service_that_hangs_fails_at_its_ceiling(tmp_path, monkeypatch):
    error, took = start(tmp_path, monkeypatch, Scripted(tmp_path, "exec sleep 60", 1.5))
    assert "producer was not ready after 2 s (not yet)" in error.message
    assert 1.5 <= took < 10
