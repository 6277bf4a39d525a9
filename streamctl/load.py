"""Run Locust against the producer API as a child process and read its live figures.

Locust runs in its own process (it monkey-patches the interpreter with gevent); its CSV files,
written every second, are the live feed: the Aggregated row of `_stats_history.csv`.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from streamctl.errors import ConfigError, StartupError
from streamctl.paths import STACK_DIR

LOCUSTFILE = STACK_DIR / "locust" / "locustfile.py"
PROFILES = {"seed": "SeedUser", "max": "MaxUser"}
DURATION_RE = re.compile(r"^(\d+)(s|m|h)?$")


def parse_duration(text: str) -> int:
    """'90s', '2m', '1h' or plain seconds -> seconds."""
    match = DURATION_RE.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(f"duration {text!r} is not like 90s, 2m or 1h", hint="use a positive number with s, m or h")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


@dataclass(frozen=True)
class LoadPlan:
    host: str
    users: int
    spawn_rate: int
    duration_s: int
    profile: str = "seed"
    workers: int = 0  # 0: one local Locust process; N: a master and N workers
    web: bool = False
    web_port: int = 8089

    def validate(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}", hint=f"use one of: {', '.join(PROFILES)}")
        if self.users < 1 or self.spawn_rate < 1 or self.workers < 0:
            raise ConfigError("--users and --spawn-rate must be at least 1, --workers at least 0",
                              hint="see `streamctl load --help`")


@dataclass
class LoadSnapshot:
    users: int = 0
    rps: float = 0.0
    failures_per_s: float = 0.0
    requests: int = 0
    failures: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    elapsed_s: float = 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass
class LoadResult:
    plan: LoadPlan
    final: LoadSnapshot
    interrupted: bool
    output_dir: Path
    html_report: Path
    per_endpoint: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"plan": asdict(self.plan), "final": {**asdict(self.final), "failure_ratio": self.final.failure_ratio},
                "interrupted": self.interrupted, "html_report": str(self.html_report),
                "per_endpoint": self.per_endpoint}


def _number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_history(path: Path, started: float) -> LoadSnapshot | None:
    """The last Aggregated row Locust wrote, or None before the first one."""
    try:
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("Name") == "Aggregated"]
    except OSError:
        return None
    if not rows:
        return None
    last = rows[-1]
    return LoadSnapshot(
        users=int(last["User Count"]), rps=_number(last["Requests/s"]) or 0.0,
        failures_per_s=_number(last["Failures/s"]) or 0.0,
        requests=int(last["Total Request Count"]), failures=int(last["Total Failure Count"]),
        p50_ms=_number(last["50%"]), p95_ms=_number(last["95%"]), p99_ms=_number(last["99%"]),
        elapsed_s=time.monotonic() - started,
    )


def read_final(path: Path) -> tuple[dict | None, list[dict]]:
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None, []
    aggregated = next((r for r in rows if r.get("Name") == "Aggregated"), None)
    return aggregated, [r for r in rows if r.get("Name") != "Aggregated"]


def locust_argv(plan: LoadPlan, csv_prefix: Path, html: Path, role: str = "local") -> list[str]:
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", plan.host]
    if role == "worker":
        return base + ["--worker", "--master-host", "127.0.0.1", PROFILES[plan.profile]]
    argv = base + ["--users", str(plan.users), "--spawn-rate", str(plan.spawn_rate),
                   "--run-time", f"{plan.duration_s}s", "--csv", str(csv_prefix), "--html", str(html),
                   "--stop-timeout", "5", "--exit-code-on-error", "0", "--only-summary"]
    if plan.web:
        argv += ["--web-host", "127.0.0.1", "--web-port", str(plan.web_port), "--autostart"]
    else:
        argv += ["--headless"]
    if role == "master":
        argv += ["--master", "--master-bind-host", "127.0.0.1", "--expect-workers", str(plan.workers)]
    return argv + [PROFILES[plan.profile]]


def run_load(plan: LoadPlan, output_dir: Path, on_tick: Callable[[LoadSnapshot], None] | None = None) -> LoadResult:
    plan.validate()
    output_dir.mkdir(parents=True, exist_ok=True)
    csv_prefix, html, log_path = output_dir / "locust", output_dir / "report.html", output_dir / "locust.log"
    for old in output_dir.glob("locust_*.csv"):
        old.unlink()
    env = {**os.environ, "CSV_STATS_INTERVAL_SEC": "1"}
    log = log_path.open("wb")
    processes = []
    role = "master" if plan.workers else "local"
    processes.append(subprocess.Popen(locust_argv(plan, csv_prefix, html, role), env=env, stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    for _ in range(plan.workers):
        processes.append(subprocess.Popen(locust_argv(plan, csv_prefix, html, "worker"), env=env, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    main = processes[0]
    started = time.monotonic()
    history = Path(f"{csv_prefix}_stats_history.csv")
    interrupted = False
    snapshot = LoadSnapshot()
    try:
        while main.poll() is None:
            time.sleep(1)
            snapshot = read_history(history, started) or snapshot
            if on_tick:
                on_tick(snapshot)
    except KeyboardInterrupt:
        interrupted = True
        main.send_signal(signal.SIGINT)  # Locust stops its users and writes its final stats
        try:
            main.wait(timeout=20)
        except subprocess.TimeoutExpired:
            main.kill()
    finally:
        for worker in processes[1:]:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        log.close()
    if main.returncode not in (0, None) and not interrupted and not Path(f"{csv_prefix}_stats.csv").is_file():
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise StartupError(f"Locust exited with code {main.returncode}", details=tail, hint=f"full log: {log_path}")
    aggregated, endpoints = read_final(Path(f"{csv_prefix}_stats.csv"))
    if aggregated is not None:
        snapshot.requests = int(aggregated["Request Count"])
        snapshot.failures = int(aggregated["Failure Count"])
        snapshot.rps = _number(aggregated["Requests/s"]) or snapshot.rps
        snapshot.p50_ms = _number(aggregated["50%"])
        snapshot.p95_ms = _number(aggregated["95%"])
        snapshot.p99_ms = _number(aggregated["99%"])
    snapshot.elapsed_s = time.monotonic() - started
    return LoadResult(plan, snapshot, interrupted, output_dir, html,
                      [{"name": r["Name"], "requests": int(r["Request Count"]), "failures": int(r["Failure Count"]),
                        "p95_ms": _number(r["95%"])} for r in endpoints])
