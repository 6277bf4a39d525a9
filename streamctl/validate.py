"""`validate`: prove every transaction in the Kafka topic is counted exactly once in both sinks.

Ground truth is the `transactions` topic itself, read from offset 0 to its end offsets. The
expected windows are recomputed here in Python (streamctl/pipeline/windows.py), independently of
Flink, and compared key by key with PostgreSQL `sales_summary` and the Elasticsearch index.

A window is compared only once it is settled: its end is at least `grace` before the watermark
the job can have reached (the oldest of the partitions' newest event times, minus the watermark
delay). Windows not yet settled are reported apart, as pending, not as failures.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

import orjson

from streamctl.endpoints import Endpoints
from streamctl.errors import ServiceUnavailable
from streamctl.pipeline.windows import WindowFigures, WindowKey, add, as_job_reads, event_time_ms, window_start

CENT = Decimal("0.01")


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


@dataclass
class TopicScanner:
    """Reads the topic incrementally: each advance() reads up to the current end offsets.

    librdkafka (confluent-kafka) reads here: kafka-python scanned 8,500 records/s, which would
    make a million-record topic take two minutes.
    """

    bootstrap: str
    topic: str
    window_ms: int
    expected: dict[WindowKey, WindowFigures] = field(default_factory=dict)
    rejects: dict[int, int] = field(default_factory=dict)  # window start -> records the job cannot count
    records: int = 0
    heartbeats: int = 0
    transactions: int = 0
    duplicate_ids: int = 0
    partition_high_ms: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

        self._seen_ids: set[int] = set()
        self._consumer = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": f"streamctl-validate-{uuid.uuid4().hex}",
            "enable.auto.commit": False, "enable.auto.offset.store": False, "log_level": 3,
            "fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": 16 * 1024 * 1024,
            "queued.max.messages.kbytes": 256 * 1024,
        })
        try:
            topic = self._consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
        except KafkaException as exc:
            self._consumer.close()
            raise ServiceUnavailable(f"Kafka is unreachable at {self.bootstrap} ({exc.args[0].str()})",
                                     hint="start the stack with `streamctl up`") from None
        if topic is None or topic.error is not None or not topic.partitions:
            self._consumer.close()
            raise ServiceUnavailable(f"topic {self.topic!r} does not exist", hint="run `streamctl up` first")
        self._partitions = sorted(topic.partitions)
        self._next = {p: 0 for p in self._partitions}  # next offset to read per partition
        self._TopicPartition = TopicPartition
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self._partitions])

    def advance(self) -> None:
        end = {}
        for p in self._partitions:
            low, high = self._consumer.get_watermark_offsets(self._TopicPartition(self.topic, p), timeout=10)
            end[p] = high
            self._next[p] = max(self._next[p], low)
        add = self._add
        idle_polls = 0
        while any(self._next[p] < end[p] for p in self._partitions):
            messages = self._consumer.consume(num_messages=20000, timeout=1.0)
            if not messages:
                idle_polls += 1
                if idle_polls > 30:
                    raise ServiceUnavailable(f"Kafka stopped delivering {self.topic} before its end offsets",
                                             hint="check `streamctl status`")
                continue
            idle_polls = 0
            for message in messages:
                if message.error() is not None:
                    continue
                p, offset = message.partition(), message.offset()
                if offset >= end[p]:
                    continue
                self._next[p] = offset + 1
                add(p, message.value(), message.timestamp()[1])

    def _add(self, partition: int, raw: bytes | None, kafka_ts: int) -> None:
        self.records += 1
        try:
            value: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            value = None
        ts = event_time_ms(value, kafka_ts) if isinstance(value, dict) else kafka_ts
        if ts > self.partition_high_ms.get(partition, -1):
            self.partition_high_ms[partition] = ts
        job = as_job_reads(value, raw)
        if job is not None and job.heartbeat:
            self.heartbeats += 1
            return
        start = window_start(ts, self.window_ms)
        if job is None or not job.countable:
            self.rejects[start] = self.rejects.get(start, 0) + 1
            return
        self.transactions += 1
        tid = value.get("transaction_id")
        if tid is not None:
            digest = hash(tid)
            if digest in self._seen_ids:
                self.duplicate_ids += 1
            self._seen_ids.add(digest)
        add(self.expected, WindowKey(start, job.category, job.brand, job.payment_method, job.currency), job)

    def watermark_ms(self, delay_ms: int) -> int | None:
        if len(self.partition_high_ms) < len(self._partitions):
            return None  # a partition with no record yet holds the job's watermark back
        return min(self.partition_high_ms.values()) - delay_ms

    def close(self) -> None:
        self._consumer.close()


def read_postgres(endpoints: Endpoints) -> tuple[dict[WindowKey, Row], dict[int, int]]:
    conn = endpoints.postgres_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT (extract(epoch FROM window_start) * 1000)::bigint, category, brand, payment_method,"
                        " currency, transaction_count, items_sold, revenue, avg_ticket FROM sales_summary")
            rows = cur.fetchall()
            cur.execute("SELECT (extract(epoch FROM window_start) * 1000)::bigint, rejected_count FROM rejected_summary")
            rejects = dict(cur.fetchall())
    finally:
        conn.close()
    windows = {}
    for start, category, brand, payment, currency, count, items, revenue, avg in rows:
        windows[WindowKey(int(start), category, brand, payment, currency.strip())] = Row(count, items, revenue, avg)
    return windows, rejects


def read_elasticsearch(endpoints: Endpoints, index: str) -> dict[WindowKey, Row]:
    from elasticsearch import Elasticsearch
    from elasticsearch import exceptions as es_errors

    from streamctl.pipeline.contract import parse_event_time

    es = Elasticsearch(endpoints.elasticsearch_url, request_timeout=30)
    windows = {}
    try:
        if not es.indices.exists(index=index):
            return windows
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
                windows[WindowKey(start_ms, d["category"], d["brand"], d["payment_method"], d["currency"])] = row
            page = es.scroll(scroll_id=scroll_id, scroll="1m")
            scroll_id = page.get("_scroll_id")
        if scroll_id:
            es.clear_scroll(scroll_id=scroll_id)
    except (es_errors.ConnectionError, es_errors.ConnectionTimeout) as exc:
        raise ServiceUnavailable(f"Elasticsearch is unreachable at {endpoints.elasticsearch_url}"
                                 f" ({type(exc).__name__})", hint="check `streamctl status`") from None
    finally:
        es.close()
    return windows


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


def _key_json(key: WindowKey) -> dict[str, Any]:
    from streamctl.pipeline.contract import format_event_time

    return {"window_start": format_event_time(key.window_start_ms), "category": key.category, "brand": key.brand,
            "payment_method": key.payment_method, "currency": key.currency}


def compare(name: str, expected: dict[WindowKey, WindowFigures], actual: dict[WindowKey, Row],
            settled: Callable[[WindowKey], bool]) -> SinkReport:
    report = SinkReport(name)
    for key, figures in expected.items():
        if not settled(key):
            continue
        want, got = Row.expected(figures), actual.get(key)
        if got is None:
            report.missing.append({**_key_json(key), "expected": want.to_json()})
        elif got != want:
            report.different.append({**_key_json(key), "expected": want.to_json(), "actual": got.to_json()})
        else:
            report.matched += 1
    for key, got in actual.items():
        if key not in expected and settled(key):
            report.extra.append({**_key_json(key), "actual": got.to_json()})
    return report


@dataclass
class Validation:
    topic: dict[str, Any]
    sinks: list[SinkReport]
    pending_windows: list[dict]
    rejects: dict[str, int]
    notes: list[str]
    seconds: float

    @property
    def exact(self) -> bool:
        return all(s.exact for s in self.sinks)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": "exact" if self.exact else "mismatch",
            "topic": self.topic,
            "sinks": {s.name: {"exact": s.exact, "matched": s.matched, "missing": s.missing, "extra": s.extra,
                               "different": s.different} for s in self.sinks},
            "pending_windows": self.pending_windows,
            "rejected_records": self.rejects,
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class ValidationPlan:
    topic: str
    index: str
    window_seconds: int
    watermark_delay_seconds: int
    wait_s: float = 0.0
    grace_s: float = 5.0


def validate(endpoints: Endpoints, plan: ValidationPlan, notes: list[str] | None = None,
             on_progress: Callable[[str], None] | None = None) -> Validation:
    started = time.monotonic()
    window_ms = plan.window_seconds * 1000
    scanner = TopicScanner(endpoints.kafka_bootstrap, plan.topic, window_ms)
    deadline = started + plan.wait_s
    try:
        while True:
            scanner.advance()
            watermark = scanner.watermark_ms(plan.watermark_delay_seconds * 1000)
            horizon = (watermark - int(plan.grace_s * 1000)) if watermark is not None else None

            def settled(key: WindowKey) -> bool:
                return horizon is not None and key.window_start_ms + window_ms <= horizon

            postgres, pg_rejects = read_postgres(endpoints)
            elastic = read_elasticsearch(endpoints, plan.index)
            sinks = [compare("postgres", scanner.expected, postgres, settled),
                     compare("elasticsearch", scanner.expected, elastic, settled)]
            pending = sorted({k.window_start_ms for k in scanner.expected if not settled(k)})
            done = all(s.exact for s in sinks) and not pending
            if done or time.monotonic() >= deadline:
                break
            if on_progress:
                waiting = [f"{len(pending)} window(s) still open"] if pending else []
                waiting += [f"{s.name} not exact yet" for s in sinks if not s.exact]
                on_progress(", ".join(waiting))
            time.sleep(2)
        from streamctl.pipeline.contract import format_event_time

        return Validation(
            topic={"topic": plan.topic, "records": scanner.records, "transactions": scanner.transactions,
                   "heartbeats": scanner.heartbeats, "rejected": sum(scanner.rejects.values()),
                   "duplicate_transaction_ids": scanner.duplicate_ids, "windows": len(scanner.expected),
                   "watermark": format_event_time(watermark) if watermark is not None else None},
            sinks=sinks,
            pending_windows=[{"window_start": format_event_time(s)} for s in pending],
            rejects={"in_topic": sum(scanner.rejects.values()), "counted_by_job": sum(pg_rejects.values())},
            notes=list(notes or []),
            seconds=time.monotonic() - started,
        )
    finally:
        scanner.close()
