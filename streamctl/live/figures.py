"""The figures the live view and the report show, each read from where it lives: the windows from
PostgreSQL, the counters from the producer, offsets and lag from Kafka, the job from its JobManager."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from streamctl.endpoints import Endpoints
from streamctl.flink.placement import JobPlacement
from streamctl.flink.status import job_report
from streamctl.kafka_info import lag_report
from streamctl.pipeline.contract import format_event_time

SHOWN_WINDOWS = 30
SHOWN_SERIES = 8  # more categories than this: the rest are summed as "other"
OTHER = "other"
def postgres_window_starts(connection, since_ms: int, category: str | None = None) -> set[int]:
    """Window starts (epoch ms) in sales_summary from `since_ms`, of one category when given. Ends the
    transaction, so the next call on the same connection sees a fresh snapshot."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT (EXTRACT(EPOCH FROM window_start) * 1000)::bigint FROM sales_summary"
                       " WHERE window_start >= to_timestamp(%s / 1000.0) AND (%s IS NULL OR category = %s)",
                       (since_ms, category, category))
        found = {int(row[0]) for row in cursor.fetchall()}
    connection.rollback()
    return found


def elasticsearch_window_starts(endpoints: Endpoints, index: str, since_ms: int, category: str | None = None) -> set[int]:
    """Window starts (epoch ms) in the index from `since_ms`, of one category when given."""
    query: dict[str, Any] = {"bool": {"filter": [{"range": {"window_start": {"gte": since_ms, "format": "epoch_millis"}}}]
                                      + ([{"term": {"category": category}}] if category is not None else [])}}
    status, body = endpoints.elasticsearch.request(
        f"/{index}/_search", 3, "POST",
        {"size": 0, "query": query, "aggs": {"starts": {"terms": {"field": "window_start", "size": 1000}}}})
    if status != 200:
        return set()
    return {int(bucket["key"]) for bucket in body["aggregations"]["starts"]["buckets"]}


def _series(rows: list[tuple[int, str, float, int]], starts: list[int]) -> list[dict[str, Any]]:
    """rows (window index, name, revenue, transactions) -> one series per name over the windows, the
    biggest SHOWN_SERIES by revenue, the rest summed as "other"."""
    revenue: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(starts))
    count: dict[str, list[int]] = defaultdict(lambda: [0] * len(starts))
    for index, name, value, transactions in rows:
        revenue[name][index] += value
        count[name][index] += transactions
    ranked = sorted(revenue, key=lambda n: (-sum(revenue[n]), n))
    shown, rest = ranked[:SHOWN_SERIES], ranked[SHOWN_SERIES:]
    series = [{"name": n, "revenue": [round(v, 2) for v in revenue[n]], "transactions": count[n]} for n in shown]
    if rest:
        series.append({"name": OTHER if OTHER not in shown else f"{OTHER} ({len(rest)})",
                       "revenue": [round(sum(revenue[n][i] for n in rest), 2) for i in range(len(starts))],
                       "transactions": [sum(count[n][i] for n in rest) for i in range(len(starts))]})
    return series


def gather_windows(endpoints: Endpoints, shown: int = SHOWN_WINDOWS) -> dict[str, Any]:
    """The last `shown` windows in PostgreSQL: revenue and transactions by category and by payment method."""
    connection = endpoints.postgres_connect(timeout_s=3)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT (EXTRACT(EPOCH FROM window_start) * 1000)::bigint, "
                           "(EXTRACT(EPOCH FROM max(window_end)) * 1000)::bigint FROM sales_summary "
                           "GROUP BY window_start ORDER BY window_start DESC LIMIT %s", (shown,))
            bounds = sorted(cursor.fetchall())
            starts = [int(b[0]) for b in bounds]
            position = {start: i for i, start in enumerate(starts)}
            by: dict[str, list[tuple[int, str, float, int]]] = {}
            for column in ("category", "payment_method"):
                cursor.execute(f"SELECT (EXTRACT(EPOCH FROM window_start) * 1000)::bigint, {column}, sum(revenue),"
                               f" sum(transaction_count) FROM sales_summary WHERE window_start >= "
                               f"to_timestamp(%s / 1000.0) GROUP BY 1, 2", (starts[0] if starts else 0,))
                by[column] = [(position[int(s)], name, float(revenue), int(n)) for s, name, revenue, n
                              in cursor.fetchall() if int(s) in position]
            cursor.execute("SELECT count(DISTINCT window_start), coalesce(sum(transaction_count), 0), "
                           "coalesce(sum(items_sold), 0), coalesce(sum(revenue), 0) FROM sales_summary")
            windows, transactions, items, revenue = cursor.fetchone()
    finally:
        connection.close()
    return {
        "starts": [format_event_time(s) for s in starts], "ends": [format_event_time(int(b[1])) for b in bounds],
        "by_category": _series(by["category"], starts),
        "by_payment_method": _series(by["payment_method"], starts),
        "totals": {"windows": int(windows), "transactions": int(transactions), "items_sold": int(items),
                   "revenue": str(revenue)},
    }


def gather_kafka(endpoints: Endpoints, groups: dict[str, str]) -> list[dict[str, Any]]:
    """Per consumer group (the job's, the indexer's): its topic's end offsets, committed offsets, lag."""
    return [dataclasses.asdict(lag) for lag in lag_report(endpoints.kafka, groups)]


def gather_job(placement: JobPlacement) -> dict[str, Any]:
    report = job_report(placement, None, "", "")
    return {"state": report.state, "uptime_s": report.uptime_s, "restarts": report.restarts,
            "parallelism": report.parallelism, "last_checkpoint_age_s": report.last_checkpoint.get("age_s"),
            "watermark_delay_s": report.watermark_delay_s, "lag_s": report.lag_s,
            "falling_behind": report.falling_behind}
