"""Freshness: from the end of a window (wall clock) until its row is visible in PostgreSQL and in
Elasticsearch. One marked transaction is posted in each of N consecutive windows; both sinks are
polled every 100 ms for the marked rows."""

from __future__ import annotations

import math
import statistics
import time
import uuid
from dataclasses import dataclass

from streamctl.endpoints import Endpoints
from streamctl.live.figures import elasticsearch_window_starts, postgres_window_starts
from streamctl.verdicts import validation_plan
from streamctl.waits import http_json

POLL_S = 0.1


@dataclass
class WindowSeen:
    window_end_ms: int
    postgres_ms: int | None = None
    elasticsearch_ms: int | None = None

    def both_ms(self) -> int | None:
        if self.postgres_ms is None or self.elasticsearch_ms is None:
            return None
        return max(self.postgres_ms, self.elasticsearch_ms)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def _post(endpoints: Endpoints, marker: str) -> int:
    payload = {"transaction_id": str(uuid.uuid4()), "product_id": 1, "product_name": "freshness probe",
               "product_category": marker, "product_price": 10.0, "product_quantity": 1, "product_brand": "bench",
               "total_amount": 10.0, "currency": "BRL", "customer_id": 1, "transaction_date": "now",
               "payment_method": "Pix"}
    status, _ = http_json(f"{endpoints.producer_url}/transaction", 5, "POST", payload)
    if status != 201:
        raise RuntimeError(f"the producer answered {status}")
    return int(time.time() * 1000)


def bench_freshness(settings, windows: int = 10) -> dict:
    endpoints = Endpoints.of(settings)
    plan, _ = validation_plan(settings, 0)  # the rules the running job was submitted with, not today's settings
    window_ms = plan.window_seconds * 1000
    marker = f"freshness-{uuid.uuid4().hex[:8]}"
    connection = endpoints.postgres_connect()
    seen: dict[int, WindowSeen] = {}
    try:
        now_ms = int(time.time() * 1000)
        first_start = (now_ms // window_ms + 1) * window_ms
        post_at = [first_start + i * window_ms + window_ms // 4 for i in range(windows)]
        deadline_ms = first_start + windows * window_ms + 120_000
        while time.time() * 1000 < deadline_ms:
            now_ms = int(time.time() * 1000)
            if post_at and now_ms >= post_at[0]:
                post_at.pop(0)
                posted_ms = _post(endpoints, marker)
                start = posted_ms // window_ms * window_ms
                seen.setdefault(start, WindowSeen(start + window_ms))
            for start in postgres_window_starts(connection, first_start, marker):
                if start in seen and seen[start].postgres_ms is None:
                    seen[start].postgres_ms = int(time.time() * 1000)
            for start in elasticsearch_window_starts(endpoints, settings.elasticsearch.index, first_start, marker):
                if start in seen and seen[start].elasticsearch_ms is None:
                    seen[start].elasticsearch_ms = int(time.time() * 1000)
            if not post_at and all(w.both_ms() is not None for w in seen.values()):
                break
            time.sleep(POLL_S)
    finally:
        connection.close()
    lags: dict[str, list[float]] = {"postgres": [], "elasticsearch": [], "both": []}
    for w in seen.values():
        for sink, at in (("postgres", w.postgres_ms), ("elasticsearch", w.elasticsearch_ms), ("both", w.both_ms())):
            if at is not None:
                lags[sink].append((at - w.window_end_ms) / 1000)
    summary = {sink: {"p50_s": round(statistics.median(v), 2), "p95_s": round(percentile(v, 0.95), 2),
                      "max_s": round(max(v), 2)} if v else None for sink, v in lags.items()}
    return {"windows": len(seen), "window_seconds": plan.window_seconds,
            "watermark_delay_seconds": plan.watermark_delay_seconds,
            "never_seen": sum(1 for w in seen.values() if w.both_ms() is None), "poll_s": POLL_S,
            "freshness": summary, "goal_p95_s": 2.5}
