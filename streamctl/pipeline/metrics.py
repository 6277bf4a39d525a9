"""Producer counters, summed over granian's worker processes.

Each worker keeps its counters in memory and writes them to its own small file once a second; any
worker answering /metrics adds up its live counters and the other workers' files.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from streamctl.waits import http_text

HELP = {
    "accepted": ("streamctl_producer_records_accepted_total", "Records acknowledged by Kafka (answered 2xx)."),
    "rejected_invalid": ("streamctl_producer_records_rejected_total", "Records refused.", "invalid"),
    "rejected_too_large": ("streamctl_producer_records_rejected_total", "Records refused.", "too_large"),
    "rejected_media_type": ("streamctl_producer_records_rejected_total", "Records refused.", "media_type"),
    "rejected_unavailable": ("streamctl_producer_records_rejected_total", "Records refused.", "kafka_unavailable"),
    "rejected_behind": ("streamctl_producer_records_rejected_total", "Records refused.", "job_behind"),
    "heartbeats": ("streamctl_producer_heartbeats_total", "Watermark heartbeat records written."),
    "internal_errors": ("streamctl_producer_internal_errors_total", "Requests that failed inside the API."),
}


class WorkerCounters:
    def __init__(self, directory: Path | None):
        self.values: Counter[str] = Counter()
        self.directory = directory
        self.path = directory / f"worker-{os.getpid()}.json" if directory else None
        if directory:
            directory.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, amount: int = 1) -> None:
        self.values[name] += amount

    def flush(self) -> None:
        if self.path:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.values))
            os.replace(tmp, self.path)

    def remove(self) -> None:
        if self.path:
            self.path.unlink(missing_ok=True)

    def totals(self) -> Counter[str]:
        total = Counter(self.values)
        if self.directory:
            for file in self.directory.glob("worker-*.json"):
                if file == self.path:
                    continue
                pid = int(file.stem.split("-")[1])
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    file.unlink(missing_ok=True)  # a worker that is gone; its counts went with it
                    continue
                except PermissionError:
                    pass
                try:
                    total.update(json.loads(file.read_text()))
                except (OSError, ValueError):
                    continue
        return total

    def prometheus_text(self) -> str:
        totals = self.totals()
        lines, described = [], set()
        for key, spec in HELP.items():
            metric, text = spec[0], spec[1]
            if metric not in described:
                lines += [f"# HELP {metric} {text}", f"# TYPE {metric} counter"]
                described.add(metric)
            label = f'{{reason="{spec[2]}"}}' if len(spec) > 2 else ""
            lines.append(f"{metric}{label} {totals.get(key, 0)}")
        return "\n".join(lines) + "\n"


COUNTER_NAMES = {  # producer metric line -> counter, as the live view and the dashboard read them
    "streamctl_producer_records_accepted_total": "accepted",
    'streamctl_producer_records_rejected_total{reason="invalid"}': "rejected_invalid",
    'streamctl_producer_records_rejected_total{reason="too_large"}': "rejected_too_large",
    'streamctl_producer_records_rejected_total{reason="media_type"}': "rejected_media_type",
    'streamctl_producer_records_rejected_total{reason="kafka_unavailable"}': "rejected_unavailable",
}


def producer_counters(producer_url: str) -> dict[str, int]:
    """The producer's counters (summed over its workers) from its Prometheus text."""
    text = http_text(f"{producer_url}/metrics", 2)
    counters = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in COUNTER_NAMES:
            counters[COUNTER_NAMES[name]] = int(float(value))
    return counters
