"""The watchdog's loop with stand-ins for the stack: restart what crashed, count it, back off on
failure, wait for a busy stack (the real restarts are in tests/integration/test_faults.py)."""

from __future__ import annotations

import threading

from streamctl.config import Settings, load_settings, settings_yaml
from streamctl.runtimes.local import watchdog


class FakeStack:
    def __init__(self, failures: int = 0, busy: int = 0):
        self.down = ["flink-taskmanager"]
        self.failures, self.busy, self.attempts = failures, busy, 0

    def crashed(self) -> list[str]:
        return list(self.down)

    def restart(self) -> None:
        self.attempts += 1
        if self.busy:
            self.busy -= 1
            raise watchdog.StackBusy()
        if self.failures:
            self.failures -= 1
            raise RuntimeError("port taken")
        self.down = []


def run(stack: FakeStack, tmp_path, polls: int, monkeypatch, backoff=(0, 0, 0)) -> None:
    monkeypatch.setattr(watchdog, "BACKOFF_S", backoff)
    stop = threading.Event()
    calls = {"n": 0}
    original = stack.crashed

    def crashed() -> list[str]:
        calls["n"] += 1
        if calls["n"] > 2 * polls:
            stop.set()
        return original()

    watchdog.watch(crashed, stack.restart, tmp_path, stop, poll_s=0)


def test_a_crashed_service_is_restarted_and_counted(tmp_path, monkeypatch):
    stack = FakeStack()
    run(stack, tmp_path, 3, monkeypatch)
    assert stack.attempts == 1 and watchdog.read_restarts(tmp_path) == {"flink-taskmanager": 1}


def watch_with_pids(down, restart, running: dict, tmp_path, monkeypatch, polls: int = 4) -> None:
    """Four polls of the watchdog over services whose pids are `running` (None: not running)."""
    monkeypatch.setattr(watchdog, "BACKOFF_S", (0,))
    stop = threading.Event()
    seen = {"n": 0}

    def crashed() -> list[str]:
        seen["n"] += 1
        if seen["n"] > polls:
            stop.set()
        return down()

    watchdog.watch(crashed, restart, tmp_path, stop, poll_s=0, pids=lambda: dict(running))


def test_a_service_killed_after_the_check_but_restarted_with_the_others_is_counted(tmp_path, monkeypatch):
    """The indexer dies a moment after the TaskManager: the check saw only the TaskManager, but the
    restart (an `up`) brings both back with new pids, and both are counted."""
    stack = FakeStack()
    running = {"flink-taskmanager": None, "indexer": 11, "kafka": 7}

    def restart() -> None:
        stack.restart()
        running.update({"flink-taskmanager": 21, "indexer": 22})  # the indexer had died meanwhile

    watch_with_pids(stack.crashed, restart, running, tmp_path, monkeypatch)
    assert watchdog.read_restarts(tmp_path) == {"flink-taskmanager": 1, "indexer": 1}


def test_services_an_attempt_brought_back_before_it_failed_are_counted(tmp_path, monkeypatch):
    """The attempt starts the TaskManager and the indexer again, then fails on a later step (the job
    still restarting); the next poll finds nothing down. Both restarts still count."""
    running = {"flink-taskmanager": None, "indexer": None, "kafka": 7}
    down = ["flink-taskmanager", "indexer"]

    def restart() -> None:
        running.update({"flink-taskmanager": 21, "indexer": 22})
        down.clear()
        raise RuntimeError("the job is still RESTARTING")

    watch_with_pids(lambda: list(down), restart, running, tmp_path, monkeypatch)
    assert watchdog.read_restarts(tmp_path) == {"flink-taskmanager": 1, "indexer": 1}


def test_failed_restarts_are_retried_and_counted_once_they_work(tmp_path, monkeypatch):
    stack = FakeStack(failures=2)
    run(stack, tmp_path, 10, monkeypatch)
    assert stack.attempts == 3 and watchdog.read_restarts(tmp_path) == {"flink-taskmanager": 1}


def test_failures_back_off(tmp_path, monkeypatch):
    stack = FakeStack(failures=100)
    run(stack, tmp_path, 20, monkeypatch, backoff=(3600,))
    assert stack.attempts == 1  # the next attempt is an hour away
    assert watchdog.read_restarts(tmp_path) == {}


def test_a_busy_stack_is_waited_for_without_backing_off(tmp_path, monkeypatch):
    stack = FakeStack(busy=2)
    run(stack, tmp_path, 5, monkeypatch, backoff=(3600,))
    assert stack.attempts == 3 and watchdog.read_restarts(tmp_path) == {"flink-taskmanager": 1}


def test_the_settings_snapshot_reads_back_to_the_same_settings(tmp_path):
    settings = Settings(stack_name="snap", state_dir=tmp_path, bind_address="127.0.0.2")
    settings.flink.dedup_minutes = 7
    path = tmp_path / "settings.yaml"
    path.write_text(settings_yaml(settings))
    again = load_settings(config_file=path, env={})
    assert again.flat() == settings.flat()
