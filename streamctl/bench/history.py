"""The benchmark history of a stack: every `streamctl bench` run left a JSON file under
state_dir/stack/bench/; here each headline figure becomes a series over the runs, so a report shows
whether a change helped."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


def _batch_rate(run: dict) -> float | None:
    return next((f["acknowledged_per_s"] for f in run.get("figures", []) if "/transactions" in f.get("server", "")), None)


def _dig(*keys: str) -> Callable[[dict], Any]:
    def read(run: dict) -> Any:
        value: Any = run
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value
    return read


@dataclass(frozen=True)
class Figure:
    benchmark: str  # the file's prefix: startup, ingest, freshness, validate, job
    label: str
    unit: str
    read: Callable[[dict], Any]
    better: str  # "lower" or "higher"


FIGURES = (
    Figure("startup", "up until the job is RUNNING (best run)", "s", _dig("best_s"), "lower"),
    Figure("startup", "idle CPU of the stack", "% of a core", _dig("idle_cpu_percent_of_one_core"), "lower"),
    Figure("startup", "idle RSS of the stack", "GiB", _dig("total_gib"), "lower"),
    Figure("ingest", "POST /transaction against the reference producer", "x", _dig("ratio_single_vs_baseline"),
           "higher"),
    Figure("ingest", "batch endpoint", "records/s", _batch_rate, "higher"),
    Figure("freshness", "freshness p95, both sinks", "s", _dig("freshness", "both", "p95_s"), "lower"),
    Figure("validate", "validate's scan of the topic", "s", _dig("validate_scan_s"), "lower"),
    Figure("job", "Flink job replay until caught up", "records/s", _dig("records_read_per_s_until_caught_up"),
           "higher"),
)


def bench_history(bench_dir: Path) -> list[dict[str, Any]]:
    """One series per figure, oldest run first: [{label, unit, better, points: [{at, value}]}]; figures
    no run measured are left out."""
    runs: list[tuple[str, str, dict]] = []
    for path in bench_dir.glob("*.json") if bench_dir.is_dir() else []:
        try:
            run = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(run, dict) and "benchmark" in run:
            runs.append((str(run.get("at", "")), run["benchmark"], run))
    runs.sort(key=lambda r: r[0])
    history = []
    for figure in FIGURES:
        points = []
        for at, benchmark, run in runs:
            value = figure.read(run) if benchmark == figure.benchmark else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                points.append({"at": at, "value": round(float(value), 2)})
        if points:
            history.append({"label": figure.label, "unit": figure.unit, "better": figure.better, "points": points})
    return history
