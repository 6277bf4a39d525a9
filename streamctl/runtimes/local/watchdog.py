"""The local runtime's restart policy: what `restart: unless-stopped` is to the docker runtime.

`up` starts one watchdog per stack (detached, pid file and log beside the services') and `down` stops
it first. Every POLL_S it looks for services that are neither running nor held; a service stopped on
purpose (Supervisor.stop) is held until it is started again. When it finds one, it runs the same
idempotent `up` the CLI runs, which starts what is missing, waits until it is ready and makes sure
the Flink job runs (restoring its newest checkpoint when the JobManager was lost). Attempts that
fail back off from 2 s to 60 s. Every restart is counted in run/restarts.json, which `status` shows.

This is the policy (the loop and its counts); the process that runs it is streamctl/watchdog.py,
above the core, since a restart is the core's `up`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("streamctl.watchdog")

NAME = "watchdog"
POLL_S = 2.0
BACKOFF_S = (2, 4, 8, 16, 32, 60)
RESTARTS_FILE = "restarts.json"


def read_restarts(run_dir: Path) -> dict[str, int]:
    try:
        return {name: int(n) for name, n in json.loads((run_dir / RESTARTS_FILE).read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def count_restarts(run_dir: Path, names: list[str]) -> None:
    counts = read_restarts(run_dir)
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    tmp = run_dir / f"{RESTARTS_FILE}.tmp"
    tmp.write_text(json.dumps(counts))
    tmp.replace(run_dir / RESTARTS_FILE)


class StackBusy(Exception):
    """Another `up` holds the stack (the CLI, usually): try again at the next poll."""


def _renewed(before: dict[str, int | None], after: dict[str, int | None]) -> list[str]:
    return sorted(name for name, pid in after.items() if pid is not None and pid != before.get(name))


def watch(crashed: Callable[[], list[str]], restart: Callable[[], Any], run_dir: Path, stop: threading.Event,
          poll_s: float = POLL_S, pids: Callable[[], dict[str, int | None]] = dict) -> None:
    """`pids`: each service's pid now. A service counts as restarted when its pid after the restart
    differs from the one just before: one killed after `crashed()` looked is counted too (it was not,
    when two services were killed a moment apart), and so is one an attempt brought back before a
    later step of it failed (the job's submission while it was still restarting, say)."""
    failures, next_try = 0, 0.0
    while not stop.is_set():
        down = crashed()
        if down and time.monotonic() >= next_try:
            log.warning("not running: %s; restarting", ", ".join(down))
            before = pids()
            try:
                restart()
            except StackBusy:
                log.info("another `up` is running; waiting for it")
                stop.wait(poll_s)
                continue  # that `up` brings them back: not the restart policy's doing
            except Exception as exc:  # keep watching: the next attempt may succeed (a port freed, disk cleaned)
                delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                failures += 1
                next_try = time.monotonic() + delay
                log.error("restart failed (%s: %s); next attempt in %d s", type(exc).__name__,
                          getattr(exc, "message", exc), delay)
                back = _renewed(before, pids())  # it may have brought services back before a later step failed
            else:
                failures = 0
                back = sorted(set(_renewed(before, pids())) | {name for name in down if name not in crashed()})
            if back:
                count_restarts(run_dir, back)
                log.warning("restarted: %s", ", ".join(back))
        stop.wait(poll_s)

