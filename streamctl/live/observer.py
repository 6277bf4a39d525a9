"""The live view's one poller of the stack.

Every second it reads the producer's counters (so it can give rates per second). From the moment
the API accepts transactions in a window until that window's rows are visible in both sinks, it
polls PostgreSQL and Elasticsearch every POLL_SINKS_S for that window: the freshness it reports is
what it saw, to that resolution. The rest (windows, Kafka, the job) is read every FULL_S while
someone looks at the page or its JSON (and once for a snapshot), so an idle stack nobody watches
costs one HTTP request a second.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from streamctl import verdicts
from streamctl.config import Settings
from streamctl.endpoints import Endpoints
from streamctl.flink.placement import JobPlacement, placement_of
from streamctl.live.figures import (
    elasticsearch_window_starts,
    gather_job,
    gather_kafka,
    gather_windows,
    postgres_window_starts,
)
from streamctl.names import StackNames
from streamctl.pipeline.contract import format_event_time
from streamctl.pipeline.metrics import producer_counters

COUNTERS_S = 1.0
POLL_SINKS_S = 0.25
FULL_S = 3.0
RULES_S = 10.0  # how often the job's rules (job.json) are read again
WATCHED_S = 60.0  # a page or JSON reader seen this recently keeps the full figures fresh
GIVE_UP_S = 180.0  # a window not visible in both sinks this long after its end is reported as never seen
KEPT_WINDOWS = 60
KEPT_SAMPLES = 600
FRESHNESS_FILE = "freshness.json"


@dataclass
class WindowSighting:
    window_start_ms: int
    window_end_ms: int
    postgres_ms: int | None = None
    elasticsearch_ms: int | None = None
    gave_up: bool = False

    @property
    def complete(self) -> bool:
        return self.postgres_ms is not None and self.elasticsearch_ms is not None

    def to_json(self) -> dict[str, Any]:
        def after_end(at: int | None) -> float | None:
            return None if at is None else round((at - self.window_end_ms) / 1000, 2)

        return {"window_start": format_event_time(self.window_start_ms), "window_end": format_event_time(self.window_end_ms),
                "postgres_s": after_end(self.postgres_ms), "elasticsearch_s": after_end(self.elasticsearch_ms),
                "never_seen": self.gave_up}


@dataclass(frozen=True)
class CounterSample:
    at: float
    accepted: int
    rejected: int
    unavailable: int


def rates(samples: list[CounterSample]) -> list[dict[str, Any]]:
    """Per second between consecutive samples. A counter below half its last value is a restarted
    producer (counted from 0); a smaller dip is a worker's file not yet rewritten (counted as 0)."""
    series = []
    for before, after in zip(samples, samples[1:], strict=False):
        span = after.at - before.at
        if span <= 0:
            continue
        point: dict[str, Any] = {"t": format_event_time(int(after.at * 1000))}
        for name in ("accepted", "rejected", "unavailable"):
            now, then = getattr(after, name), getattr(before, name)
            grew = now - then if now >= then else (now if now < then / 2 else 0)
            point[f"{name}_per_s"] = round(grew / span, 1)
        series.append(point)
    return series


class FreshnessWatch:
    """Windows the API accepted transactions for, until both sinks show them."""

    def __init__(self, window_ms: int, tolerance_ms: int, path: Path | None):
        self.window_ms = window_ms
        self.tolerance_ms = tolerance_ms
        self.path = path
        self.awaited: dict[int, WindowSighting] = {}
        self.done: collections.deque[WindowSighting] = collections.deque(maxlen=KEPT_WINDOWS)
        if path is not None:
            self._load()

    def accepted_between(self, since_ms: int, until_ms: int) -> None:
        """Transactions were accepted in this span: their windows will appear (event time may be
        up to the tolerance before the append time)."""
        first = (since_ms - self.tolerance_ms) // self.window_ms
        for n in range(max(first, until_ms // self.window_ms - 3), until_ms // self.window_ms + 1):
            start = n * self.window_ms
            if start not in self.awaited and all(w.window_start_ms != start for w in self.done):
                self.awaited[start] = WindowSighting(start, start + self.window_ms)

    def due(self, now_ms: int) -> list[WindowSighting]:
        return [w for w in self.awaited.values() if w.window_end_ms <= now_ms]

    def saw(self, now_ms: int, postgres: set[int], elasticsearch: set[int]) -> None:
        for sighting in self.due(now_ms):
            if sighting.postgres_ms is None and sighting.window_start_ms in postgres:
                sighting.postgres_ms = now_ms
            if sighting.elasticsearch_ms is None and sighting.window_start_ms in elasticsearch:
                sighting.elasticsearch_ms = now_ms
            if not sighting.complete and now_ms - sighting.window_end_ms > GIVE_UP_S * 1000:
                sighting.gave_up = True
            if sighting.complete or sighting.gave_up:
                del self.awaited[sighting.window_start_ms]
                # Nothing accepted may still have made no row (every record a reject): not a window.
                if sighting.postgres_ms is not None or sighting.elasticsearch_ms is not None:
                    self.done.append(sighting)
                    self._save()

    def recent(self) -> list[dict[str, Any]]:
        return [w.to_json() for w in sorted(self.done, key=lambda w: w.window_start_ms)]

    def _save(self) -> None:
        if self.path is None or not self.path.parent.is_dir():
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(w) for w in self.done]))
        os.replace(tmp, self.path)

    def _load(self) -> None:
        try:
            for entry in json.loads(self.path.read_text()) if self.path else []:
                self.done.append(WindowSighting(**entry))
        except (OSError, ValueError, TypeError):
            pass


class Observer:
    """Samples the stack in a thread of its own; readers get the latest figures, never a poll of theirs."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.endpoints = Endpoints.of(settings)
        self.names = StackNames.of(settings)
        self.clock = clock
        plan, _ = verdicts.validation_plan(settings, 0)
        self.freshness = FreshnessWatch(plan.window_seconds * 1000, plan.event_time_tolerance_ms,
                                        settings.stack_dir / FRESHNESS_FILE)
        self.samples: collections.deque[CounterSample] = collections.deque(maxlen=KEPT_SAMPLES)
        self.full: dict[str, Any] = {}
        self.problems: dict[str, str] = {}
        self.last_read: float | None = None  # monotonic time of the last reader
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.validation_running = False
        self.validation_error = ""
        self._postgres: Any = None
        self._placement: JobPlacement | None = None
        self.heartbeat: float | None = None  # monotonic time of the sampler's last round

    def job_placement(self) -> JobPlacement:
        if self._placement is None:
            from streamctl.runtimes.select import stack_runtime

            self._placement = placement_of(stack_runtime(self.settings))
        return self._placement

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        """The sampler: counters every second, sinks while a window is awaited. The slower full
        figures are read by a thread of their own, so they never delay a sink poll."""
        threading.Thread(target=self._run_full, name="figures", daemon=True).start()
        next_counters = next_rules = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            self.heartbeat = now
            for due, step in ((now >= next_counters, self.sample_counters),
                              (now >= next_rules, self.follow_job_rules),
                              (bool(self.freshness.due(int(self.clock() * 1000))), self.poll_sinks)):
                if due:
                    self._guarded(step)
            next_counters = now + COUNTERS_S if now >= next_counters else next_counters
            next_rules = now + RULES_S if now >= next_rules else next_rules
            self.stopping.wait(POLL_SINKS_S if self.freshness.awaited else COUNTERS_S / 2)
        self._close_postgres()

    def _run_full(self) -> None:
        while not self.stopping.is_set():
            if self.last_read is not None and time.monotonic() - self.last_read < WATCHED_S:
                self._guarded(self.refresh_full)
            self.stopping.wait(FULL_S)

    def _guarded(self, step: Callable[[], None]) -> None:
        """One step's failure is a problem the page shows, never the end of the sampler."""
        try:
            step()
            self.problems.pop(f"sampler:{step.__name__}", None)
        except Exception as exc:  # noqa: BLE001 - reported on the page; the next round tries again
            self.problems[f"sampler:{step.__name__}"] = f"{step.__name__}: {type(exc).__name__}: {str(exc)[:160]}"

    def snapshot_problems(self) -> list[str]:
        return sorted(set(dict(self.problems).values()))

    def alive(self) -> bool:
        """The sampler went round within the last 10 s (what /health reports)."""
        return self.heartbeat is not None and time.monotonic() - self.heartbeat < 10

    def follow_job_rules(self) -> None:
        """After `job upgrade --replay` to another window size, time windows of the new size."""
        plan, _ = verdicts.validation_plan(self.settings, 0)
        window_ms = plan.window_seconds * 1000
        if (window_ms, plan.event_time_tolerance_ms) != (self.freshness.window_ms, self.freshness.tolerance_ms):
            with self.lock:
                self.freshness.window_ms, self.freshness.tolerance_ms = window_ms, plan.event_time_tolerance_ms
                self.freshness.awaited.clear()

    def sample_counters(self) -> None:
        try:
            counters = producer_counters(self.endpoints.producer_url)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            self.problems["producer"] = f"producer unreachable: {type(exc).__name__}"
            return
        self.problems.pop("producer", None)
        sample = CounterSample(self.clock(), counters.get("accepted", 0),
                               sum(v for k, v in counters.items() if k.startswith("rejected_")
                                   and k != "rejected_unavailable"),
                               counters.get("rejected_unavailable", 0))
        with self.lock:
            before = self.samples[-1] if self.samples else None
            self.samples.append(sample)
        if before is not None and sample.accepted != before.accepted:
            self.freshness.accepted_between(int(before.at * 1000), int(sample.at * 1000))

    def poll_sinks(self) -> None:
        awaited = self.freshness.due(int(self.clock() * 1000))
        if not awaited:  # the clock stepped back since the caller looked
            return
        since = min(w.window_start_ms for w in awaited)
        try:
            postgres = self._postgres_windows(since)
        except Exception as exc:  # noqa: BLE001 - a sink away: the view says so and keeps watching
            self._close_postgres()
            self.problems["postgres"] = f"PostgreSQL: {type(exc).__name__}"
            postgres = set()
        else:
            self.problems.pop("postgres", None)
        try:
            elasticsearch = self._elasticsearch_windows(since)
        except (OSError, ValueError, KeyError) as exc:
            self.problems["elasticsearch"] = f"Elasticsearch: {type(exc).__name__}"
            elasticsearch = set()
        else:
            self.problems.pop("elasticsearch", None)
        with self.lock:
            self.freshness.saw(int(self.clock() * 1000), postgres, elasticsearch)

    def refresh_full(self) -> None:
        full: dict[str, Any] = {}
        for name, gather in (("windows", lambda: gather_windows(self.endpoints)),
                             ("kafka", lambda: gather_kafka(self.endpoints, self.names.lag_groups(self.settings))),
                             ("job", lambda: gather_job(self.job_placement()))):
            try:
                full[name] = gather()
                self.problems.pop(name, None)
            except Exception as exc:  # noqa: BLE001 - one part away: the others still show
                full[name] = None
                self.problems[name] = f"{name}: {type(exc).__name__}: {str(exc)[:160]}"
        with self.lock:
            self.full = full

    # -- what readers get ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        if self.last_read is None or now - self.last_read > WATCHED_S:  # nobody watched: the full figures are stale, read them now
            self._guarded(self.refresh_full)
        self.last_read = now
        with self.lock:
            samples = list(self.samples)
            full = dict(self.full)
            freshness = self.freshness.recent()
            problems = self.snapshot_problems()
        latest = samples[-1] if samples else None
        return {
            "stack": self.settings.stack_name,
            "taken_at": format_event_time(int(self.clock() * 1000)),
            "window_seconds": self.freshness.window_ms // 1000,
            "windows": full.get("windows"),
            "ingest": {"series": rates(samples)[-300:],
                       "totals": asdict(latest) if latest else None,
                       "sample_s": COUNTERS_S},
            "kafka": full.get("kafka"),
            "job": full.get("job"),
            "freshness": {"windows": freshness, "resolution_s": POLL_SINKS_S},
            "validation": {"latest": verdicts.latest(self.settings.stack_dir), "running": self.validation_running,
                           "error": self.validation_error},
            "problems": problems,
        }

    def snapshot_now(self) -> dict[str, Any]:
        """One full reading, for a page written once (report --html)."""
        self.sample_counters()
        return self.snapshot()

    # -- validate from the page ------------------------------------------------------------------

    def start_validation(self) -> bool:
        """Run validate in the background; False when one is running already."""
        with self.lock:
            if self.validation_running:
                return False
            self.validation_running = True
            self.validation_error = ""
        threading.Thread(target=self._validate, name="validate", daemon=True).start()
        return True

    def _validate(self) -> None:
        try:
            verdicts.check_stack(self.settings, 0, source="live view")
        except Exception as exc:  # noqa: BLE001 - shown on the page; the last verdict stays
            self.validation_error = f"validate could not run: {exc}"
        finally:
            self.validation_running = False

    # -- sinks -----------------------------------------------------------------------------------

    def _postgres_windows(self, since_ms: int) -> set[int]:
        if self._postgres is None:
            self._postgres = self.endpoints.postgres_connect(timeout_s=3)
        return postgres_window_starts(self._postgres, since_ms)

    def _close_postgres(self) -> None:
        if self._postgres is not None:
            try:
                self._postgres.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self._postgres = None

    def _elasticsearch_windows(self, since_ms: int) -> set[int]:
        return elasticsearch_window_starts(self.endpoints, self.settings.elasticsearch.index, since_ms)
