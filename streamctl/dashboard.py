"""What `streamctl dashboard` shows, gathered from the running stack (no terminal code here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from streamctl.config import Settings
from streamctl.endpoints import Endpoints
from streamctl.errors import ServiceUnavailable
from streamctl.flink.rest import find_job
from streamctl.kafka_info import GroupLag, lag_report
from streamctl.names import StackNames
from streamctl.pipeline.metrics import producer_counters


@dataclass
class DashboardData:
    window_start: datetime | None = None
    revenue_by_category: list[tuple[str, Decimal]] = field(default_factory=list)
    sales_by_payment: list[tuple[str, int]] = field(default_factory=list)
    accepted_total: int | None = None
    accepted_per_s: float | None = None
    lags: list[GroupLag] = field(default_factory=list)
    job_state: str = "UNKNOWN"
    problems: list[str] = field(default_factory=list)


class DashboardFeed:
    """Polls the stack; remembers the last producer counter to turn it into a rate."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.endpoints = Endpoints.of(settings)
        self._last_counter: tuple[float, int] | None = None

    def poll(self) -> DashboardData:
        data = DashboardData()
        self._latest_window(data)
        self._throughput(data)
        try:
            data.lags = lag_report(self.endpoints.kafka, StackNames.of(self.settings).lag_groups(self.settings))
        except Exception as exc:  # the dashboard keeps running while Kafka is away
            data.problems.append(f"Kafka: {type(exc).__name__}")
        try:
            job = find_job(self.endpoints.flink_url, StackNames.of(self.settings).job_name)
            data.job_state = job.state if job else "NOT SUBMITTED"
        except (OSError, ValueError):
            data.job_state = "UNREACHABLE"
        return data

    def _latest_window(self, data: DashboardData) -> None:
        try:
            conn = self.endpoints.postgres_connect(timeout_s=3)
        except ServiceUnavailable:
            data.problems.append("PostgreSQL unreachable")
            return
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT max(window_start) FROM sales_summary")
                data.window_start = cur.fetchone()[0]
                if data.window_start is not None:
                    cur.execute("SELECT category, sum(revenue) FROM sales_summary WHERE window_start = %s"
                                " GROUP BY 1 ORDER BY 2 DESC", (data.window_start,))
                    data.revenue_by_category = cur.fetchall()
                    cur.execute("SELECT payment_method, sum(transaction_count) FROM sales_summary"
                                " WHERE window_start = %s GROUP BY 1 ORDER BY 2 DESC", (data.window_start,))
                    data.sales_by_payment = cur.fetchall()
        finally:
            conn.close()

    def _throughput(self, data: DashboardData) -> None:
        try:
            counters = producer_counters(self.endpoints.producer_url)
        except OSError:
            data.problems.append("producer unreachable")
            return
        data.accepted_total = counters.get("accepted")
        now = time.monotonic()
        if data.accepted_total is not None:
            if self._last_counter is not None and now > self._last_counter[0]:
                then, count = self._last_counter
                data.accepted_per_s = max(0.0, (data.accepted_total - count) / (now - then))
            self._last_counter = (now, data.accepted_total)
