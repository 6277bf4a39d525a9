"""`validate`: prove every transaction in the Kafka topic is counted exactly once in both sinks.

Ground truth is the `transactions` topic itself, read from offset 0 to its end offsets. The
expected windows are recomputed here in Python (streamctl/pipeline/windows.py), independently of
Flink, with the job's rules as it was submitted (window, watermark delay, event-time tolerance,
retry horizon), and compared key by key with PostgreSQL `sales_summary`, the Elasticsearch index,
and, per window, the rejected records and dropped retries in `rejected_summary`.

A window is judged once it is closed: its end is before the watermark the job can have reached (the
oldest of the partitions' newest event times, minus the watermark delay). A window's rows are final
once written (the job emits each window once, when the watermark passes its end), so when every
closed window matches in all three sinks they are all judged. Otherwise only the windows that ended
at least `grace` before the watermark are: a window that just closed may not be written yet, and is
pending rather than missing. `--wait` looks again every second and ends as soon as all match.
The verdict is EXACT only when every window up to the end offsets was judged and matched; a
mismatch anywhere is MISMATCH; otherwise (windows still open, a partition never written, nothing
in the topic) it is INCONCLUSIVE, with the reason and what to do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Protocol, Sequence, TypeVar

from streamctl.endpoints import Endpoints
from streamctl.errors import ServiceUnavailable
from streamctl.pipeline.contract import format_event_time, parse_event_time
from streamctl.pipeline.windows import WindowFigures, WindowKey
from streamctl.topic_scan import TopicScanner
from streamctl.waits import http_ok

CENT = Decimal("0.01")
class SinkRow(Protocol):
    def to_json(self) -> dict[str, Any]: ...


K = TypeVar("K")
R = TypeVar("R", bound=SinkRow)


@dataclass(frozen=True)
class Row:
    """One window's figures as a sink holds them (and as they are expected to be)."""

    transaction_count: int
    items_sold: int
    revenue: Decimal
    avg_ticket: Decimal

    @classmethod
    def expected(cls, f: WindowFigures) -> "Row":
        return cls(f.transaction_count, f.items_sold, f.revenue.quantize(CENT), f.avg_ticket)

    def to_json(self) -> dict[str, Any]:
        return {"transaction_count": self.transaction_count, "items_sold": self.items_sold,
                "revenue": str(self.revenue), "avg_ticket": str(self.avg_ticket)}


@dataclass(frozen=True)
class SetAsideRow:
    """One window's row of rejected_summary: records the job could not count, retries it dropped."""

    rejected_count: int
    duplicate_count: int

    def to_json(self) -> dict[str, Any]:
        return {"rejected_count": self.rejected_count, "duplicate_count": self.duplicate_count}


def read_postgres(endpoints: Endpoints) -> tuple[dict[WindowKey, Row], dict[int, SetAsideRow]]:
    conn = endpoints.postgres_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT (extract(epoch FROM window_start) * 1000)::bigint, category, brand, payment_method,"
                        " currency, transaction_count, items_sold, revenue, avg_ticket FROM sales_summary")
            rows = cur.fetchall()
            cur.execute("SELECT (extract(epoch FROM window_start) * 1000)::bigint, rejected_count, duplicate_count"
                        " FROM rejected_summary")
            set_aside = {int(start): SetAsideRow(rejected, duplicates) for start, rejected, duplicates in cur.fetchall()}
    finally:
        conn.close()
    windows = {}
    for start, category, brand, payment, currency, count, items, revenue, avg in rows:
        windows[WindowKey(int(start), category, brand, payment, currency.strip())] = Row(count, items, revenue, avg)
    return windows, set_aside


def read_elasticsearch(endpoints: Endpoints, index: str) -> tuple[dict[WindowKey, Row], list[WindowKey]]:
    """The documents by window key, and the keys held by more than one document."""
    from elasticsearch import exceptions as es_errors

    es = endpoints.elasticsearch.client()
    windows: dict[WindowKey, Row] = {}
    doubled: list[WindowKey] = []
    try:
        if not es.indices.exists(index=index):
            return windows, doubled
        es.indices.refresh(index=index)
        page = es.search(index=index, scroll="1m", size=5000, sort=["_doc"])
        scroll_id = page.get("_scroll_id")
        while page["hits"]["hits"]:
            for hit in page["hits"]["hits"]:
                d = hit["_source"]
                start = d["window_start"]
                start_ms = parse_event_time(start if "." in start else start.replace("Z", ".000Z"))
                row = Row(int(d["transaction_count"]), int(d["items_sold"]), Decimal(str(d["revenue"])),
                          Decimal(str(d["avg_ticket"])))
                key = WindowKey(start_ms, d["category"], d["brand"], d["payment_method"], d["currency"])
                if key in windows:
                    doubled.append(key)
                windows[key] = row
            page = es.scroll(scroll_id=scroll_id, scroll="1m")
            scroll_id = page.get("_scroll_id")
        if scroll_id:
            es.clear_scroll(scroll_id=scroll_id)
    except (es_errors.ConnectionError, es_errors.ConnectionTimeout) as exc:
        raise ServiceUnavailable(f"Elasticsearch is unreachable at {endpoints.elasticsearch_url}"
                                 f" ({type(exc).__name__})", hint="check `streamctl status`") from None
    finally:
        es.close()
    return windows, doubled


@dataclass
class SinkReport:
    name: str
    matched: int = 0
    missing: list[dict] = field(default_factory=list)
    extra: list[dict] = field(default_factory=list)
    different: list[dict] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not (self.missing or self.extra or self.different)


def window_key_json(key: WindowKey) -> dict[str, Any]:
    return {"window_start": format_event_time(key.window_start_ms), "category": key.category, "brand": key.brand,
            "payment_method": key.payment_method, "currency": key.currency}


def window_start_json(start_ms: int) -> dict[str, Any]:
    return {"window_start": format_event_time(start_ms)}


def compare(name: str, expected: dict[K, R], actual: dict[K, R], settled: Callable[[K], bool],
            describe: Callable[[Any], dict[str, Any]] = window_key_json, doubled: Sequence[K] = ()) -> SinkReport:
    """Matched, missing, extra and different rows of one sink among the settled keys; a key held
    twice by a sink (two Elasticsearch documents) is extra."""
    report = SinkReport(name)
    for key, want in expected.items():
        if not settled(key):
            continue
        got = actual.get(key)
        if got is None:
            report.missing.append({**describe(key), "expected": want.to_json()})
        elif got != want:
            report.different.append({**describe(key), "expected": want.to_json(), "actual": got.to_json()})
        else:
            report.matched += 1
    for key, got in actual.items():
        if key not in expected and settled(key):
            report.extra.append({**describe(key), "actual": got.to_json()})
    for key in doubled:
        if settled(key):
            report.extra.append({**describe(key), "actual": "a second document for this key"})
    return report


@dataclass(frozen=True)
class Inconclusive:
    """Why some windows could not be judged, and what to do about it."""

    reason: str
    hint: str

    def to_json(self) -> dict[str, str]:
        return {"reason": self.reason, "hint": self.hint}


@dataclass
class Validation:
    topic: dict[str, Any]
    sinks: list[SinkReport]
    pending_windows: list[dict]
    inconclusive: list[Inconclusive]
    job: dict[str, Any]
    notes: list[str]
    seconds: float

    @property
    def verdict(self) -> str:
        if not all(s.exact for s in self.sinks):
            return "mismatch"
        return "inconclusive" if self.inconclusive else "exact"

    @property
    def exact(self) -> bool:
        return self.verdict == "exact"

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "topic": self.topic,
            "sinks": {s.name: {"exact": s.exact, "matched": s.matched, "missing": s.missing, "extra": s.extra,
                               "different": s.different} for s in self.sinks},
            "pending_windows": self.pending_windows,
            "inconclusive": [i.to_json() for i in self.inconclusive],
            "job": self.job,
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class ValidationPlan:
    """The job's rules validate applies: as the running job was submitted when that is known."""

    topic: str
    index: str
    window_seconds: int
    watermark_delay_seconds: int
    event_time_tolerance_ms: int
    dedup_minutes: int
    wait_s: float = 0.0
    grace_s: float = 5.0

    def job_json(self) -> dict[str, Any]:
        return {"window_seconds": self.window_seconds, "watermark_delay_seconds": self.watermark_delay_seconds,
                "event_time_tolerance_ms": self.event_time_tolerance_ms, "dedup_minutes": self.dedup_minutes}


def unjudged_windows(by_key: list[dict[WindowKey, Any]], by_start: list[dict[int, Any]],
                     settled_start: Callable[[int], bool]) -> list[int]:
    """Window starts not judged yet: any window the topic or a sink has a row for that is not settled.
    A sink row beyond the watermark counts too: it is not judged, so the verdict cannot be EXACT."""
    starts = {key.window_start_ms for rows in by_key for key in rows} | {start for rows in by_start for start in rows}
    return sorted(start for start in starts if not settled_start(start))


POLL_S = 1.0  # --wait: how often the topic and the sinks are read again (each look takes ~0.1 s)
PRODUCER_SILENT_MS = 10_000  # heartbeats come every second; ten without one means the producer is stopped


def inconclusive_reasons(scanner: TopicScanner, pending: list[int], watermark: int | None,
                         producer_up: Callable[[], bool]) -> list[Inconclusive]:
    reasons = []
    if scanner.transactions == 0 and not scanner.rejects:
        reasons.append(Inconclusive("the topic holds no transaction yet: there is nothing to judge",
                                    "post some (`streamctl load`), then run validate again"))
    silent = scanner.silent_partitions()
    if silent:
        reasons.append(Inconclusive(
            f"partition(s) {', '.join(map(str, silent))} of {scanner.topic} hold no record, so the job's watermark"
            " cannot pass them and no window can close",
            "start the producer (`streamctl up`): it writes a heartbeat to every partition each second"))
    if pending and not silent:
        now_ms = int(time.time() * 1000)
        no_heartbeat = scanner.newest_heartbeat_ms is None or now_ms - scanner.newest_heartbeat_ms > PRODUCER_SILENT_MS
        stopped = no_heartbeat or not producer_up()
        reason = (f"{len(pending)} window(s) not closed yet (watermark "
                  f"{format_event_time(watermark) if watermark is not None else 'none'})")
        if stopped:
            reasons.append(Inconclusive(f"{reason}: the producer is stopped, so no heartbeat moves the watermark",
                                        "start it (`streamctl up`), then `streamctl validate --wait 90s`"))
        else:
            reasons.append(Inconclusive(reason, "pass --wait 90s to wait for them to close"))
    return reasons


@dataclass(frozen=True)
class Look:
    """What one look read: the windows the topic implies, and what the three sinks hold."""

    expected: dict[WindowKey, Row]
    postgres: dict[WindowKey, Row]
    elastic: dict[WindowKey, Row]
    doubled: list[WindowKey]  # keys Elasticsearch holds twice
    expected_set_aside: dict[int, SetAsideRow]
    set_aside: dict[int, SetAsideRow]

    def judged(self, horizon: int | None, window_ms: int) -> tuple[list[SinkReport], list[int]]:
        """The sinks compared over the windows that ended by `horizon`, and the window starts left unjudged."""
        def settled_start(start_ms: int) -> bool:
            return horizon is not None and start_ms + window_ms <= horizon

        def settled(key: WindowKey) -> bool:
            return settled_start(key.window_start_ms)

        return ([compare("postgres", self.expected, self.postgres, settled),
                 compare("elasticsearch", self.expected, self.elastic, settled, doubled=self.doubled),
                 compare("rejected_summary", self.expected_set_aside, self.set_aside, settled_start, window_start_json)],
                unjudged_windows([self.expected, self.postgres, self.elastic], [self.expected_set_aside, self.set_aside],
                                 settled_start))


def validate(endpoints: Endpoints, plan: ValidationPlan, notes: list[str] | None = None,
             on_progress: Callable[[str], None] | None = None) -> Validation:
    started = time.monotonic()
    window_ms = plan.window_seconds * 1000
    scanner = TopicScanner(endpoints.kafka, plan.topic, window_ms, plan.event_time_tolerance_ms,
                           plan.dedup_minutes * 60_000)
    deadline = started + plan.wait_s
    try:
        while True:
            last_look = time.monotonic() >= deadline  # at once without --wait
            scanner.advance()
            watermark = scanner.watermark_ms(plan.watermark_delay_seconds * 1000)
            postgres, set_aside = read_postgres(endpoints)
            elastic, doubled = read_elasticsearch(endpoints, plan.index)
            look = Look({key: Row.expected(figures) for key, figures in scanner.expected.items()}, postgres, elastic,
                        doubled, {start: SetAsideRow(*counts) for start, counts in scanner.set_aside().items()},
                        set_aside)
            # Every closed window, when all of them match; else only those past the grace, so that a
            # window still being written is pending, not missing.
            sinks, pending = look.judged(watermark, window_ms)
            if not all(sink.exact for sink in sinks):
                sinks, pending = look.judged(watermark - int(plan.grace_s * 1000) if watermark is not None else None,
                                             window_ms)
            reasons = inconclusive_reasons(scanner, pending, watermark,
                                           lambda: http_ok(f"{endpoints.producer_url}/health", 2)[0])
            done = all(s.exact for s in sinks) and not reasons
            if done or last_look:
                break
            if on_progress:
                waiting = [r.reason for r in reasons] + [f"{s.name} not exact yet" for s in sinks if not s.exact]
                on_progress(", ".join(waiting))
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
        return Validation(
            topic={"topic": plan.topic, "records": scanner.records, "transactions": scanner.transactions,
                   "heartbeats": scanner.heartbeats, "rejected": sum(scanner.rejects.values()),
                   "duplicates_dropped": scanner.duplicates_dropped, "windows": len(scanner.expected),
                   "watermark": format_event_time(watermark) if watermark is not None else None},
            sinks=sinks,
            pending_windows=[{"window_start": format_event_time(s)} for s in pending],
            inconclusive=reasons,
            job=plan.job_json(),
            notes=list(notes or []),
            seconds=time.monotonic() - started,
        )
    finally:
        scanner.close()
