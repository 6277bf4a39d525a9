"""The indexer: reads the job's window aggregates from Kafka and bulk-upserts them into Elasticsearch.

Flink 1.20 has no released connector for Elasticsearch 8, so the job writes its aggregates to an
upsert Kafka topic and this service indexes them with the official client. Each document's _id is
the window key, so a replay overwrites. Kafka offsets are committed only after Elasticsearch
acknowledged the whole bulk; documents Elasticsearch rejects are set aside in a dead-letter file.

Configuration comes from INDEXER_* environment variables (streamctl sets them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from elasticsearch import helpers
from kafka import KafkaConsumer

from streamctl.access import ElasticsearchAccess
from streamctl.kafka_access import KafkaAccess

log = logging.getLogger("streamctl.indexer")


@dataclass(frozen=True)
class IndexerConfig:
    kafka: KafkaAccess
    topic: str
    group_id: str
    elasticsearch: ElasticsearchAccess
    index: str
    status_file: Path
    dead_letter_file: Path

    @classmethod
    def from_env(cls) -> "IndexerConfig":
        env = os.environ
        return cls(
            kafka=KafkaAccess.from_env(env, "INDEXER"),
            topic=env.get("INDEXER_TOPIC", "sales-aggregated"),
            group_id=env.get("INDEXER_GROUP_ID", "streamctl-indexer"),
            elasticsearch=ElasticsearchAccess.from_env(env, "INDEXER"),
            index=env.get("INDEXER_INDEX", "transactions-aggregated"),
            status_file=Path(env["INDEXER_STATUS_FILE"]),
            dead_letter_file=Path(env["INDEXER_DEAD_LETTER_FILE"]),
        )


def decode_json(raw: bytes | None) -> Any:
    """Numbers with a fraction as Decimal, not float: a revenue beyond 2^53 cents must reach
    Elasticsearch's _source exact. None for a tombstone."""
    return json.loads(raw, parse_float=Decimal) if raw else None


def iso_utc(value: str) -> str:
    """Flink writes TIMESTAMP(3) as ISO-8601 without a zone; the job runs in UTC."""
    return value if value.endswith("Z") else value + "Z"


KEY_FIELDS = ("window_start", "category", "brand", "payment_method", "currency")


def document_id(key: dict[str, Any]) -> str:
    """A hash of the window key as a JSON array: 64 characters whatever the key holds (an _id is at
    most 512 bytes), and two different keys never share one (joining with a separator would make
    ("A|B", "C") and ("A", "B|C") the same _id)."""
    canonical = json.dumps([str(key[k]) for k in KEY_FIELDS], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def to_action(index: str, key: dict[str, Any], value: dict[str, Any] | None) -> dict[str, Any]:
    key = {**key, "window_start": iso_utc(key["window_start"])}
    if value is None:  # an upsert-kafka tombstone: the window row was retracted
        return {"_op_type": "delete", "_index": index, "_id": document_id(key)}
    doc = {
        "@timestamp": iso_utc(value["window_start"]),
        "window_start": iso_utc(value["window_start"]),
        "window_end": iso_utc(value["window_end"]),
        "category": value["category"],
        "brand": value["brand"],
        "payment_method": value["payment_method"],
        "currency": value["currency"],
        "transaction_count": int(value["transaction_count"]),
        "items_sold": int(value["items_sold"]),
        # Money as exact decimal strings in _source; the mapping stores them as scaled_float for charts.
        "revenue": str(Decimal(str(value["revenue"]))),
        "avg_ticket": str(Decimal(str(value["avg_ticket"]))),
        "indexed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return {"_op_type": "index", "_index": index, "_id": document_id(key), "_source": doc}


SESSION_TIMEOUT_MS = 10_000


class Indexer:
    def __init__(self, config: IndexerConfig):
        self.config = config
        self.stopping = False
        self.indexed = 0
        self.dead_letters = 0
        self.es = config.elasticsearch.client(request_timeout=30)
        self.consumer = KafkaConsumer(
            config.topic,
            **config.kafka.kafka_python(),
            group_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            key_deserializer=decode_json,
            value_deserializer=decode_json,
            max_poll_records=2000,
            # A killed indexer's successor gets the partitions only once the group evicts the dead
            # member: kafka-python's default of 45 s held Elasticsearch 40 s behind after a kill
            # (measured); 10 s, the broker's own default before Kafka 3.0. Heartbeats come from a
            # background thread, so a slow bulk request does not look like a dead member.
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=3000,
        )

    def write_status(self, state: str, error: str = "") -> None:
        status = {"state": state, "updated": time.time(), "indexed": self.indexed,
                  "dead_letters": self.dead_letters, "error": error, "pid": os.getpid()}
        tmp = self.config.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        os.replace(tmp, self.config.status_file)

    def index_batch(self, records: list[Any]) -> None:
        actions = []
        for record in records:
            try:
                actions.append(to_action(self.config.index, record.key, record.value))
            except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                self.set_aside({"offset": record.offset, "partition": record.partition,
                                "value": record.value, "error": f"unreadable aggregate: {exc}"})
        backoff = 0.5
        while actions and not self.stopping:
            try:
                _, errors = helpers.bulk(self.es, actions, raise_on_error=False, raise_on_exception=False)
            except Exception as exc:  # Elasticsearch down: keep the batch, retry, commit nothing
                self.write_status("retrying", str(exc))
                log.warning("bulk failed, retrying in %.1fs: %s", backoff, exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            errors = errors if isinstance(errors, list) else []  # a list, with raise_on_error=False
            retry = []
            for error in errors:
                op = next(iter(error.values()))
                status = op.get("status", 0)
                if status == 429 or status >= 500 or status == 0:
                    retry.append(next(a for a in actions if a["_id"] == op.get("_id")))
                else:  # a document Elasticsearch refuses (mapping conflict): set aside, do not block
                    self.set_aside({"id": op.get("_id"), "status": status, "error": op.get("error")})
            self.indexed += len(actions) - len(errors)
            if not retry:
                self.refresh()
                return
            actions = retry
            time.sleep(backoff)
            backoff = min(backoff * 2, 10)

    def refresh(self) -> None:
        """Make the batch searchable now, not up to the index's refresh interval (1 s) later: one
        refresh per polled batch, which is one per closing window in steady state. A failed refresh
        loses nothing (the periodic one follows), so it is not retried."""
        try:
            self.es.indices.refresh(index=self.config.index)
        except Exception as exc:  # Elasticsearch going away just now: the bulk is in already
            log.warning("refresh failed: %s", exc)

    def set_aside(self, entry: dict[str, Any]) -> None:
        self.dead_letters += 1
        with self.config.dead_letter_file.open("a") as f:
            f.write(json.dumps(entry, default=str) + "\n")

    def run(self) -> None:
        self.write_status("running")
        while not self.stopping:
            batches = self.consumer.poll(timeout_ms=500)
            records = [r for batch in batches.values() for r in batch]
            if records:
                self.index_batch(records)
                if self.stopping:
                    break  # not committed: re-read after restart, overwritten by _id
                self.consumer.commit()
            self.write_status("running")
        self.consumer.close(autocommit=False)
        self.write_status("stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)  # one line per bulk is noise
    config = IndexerConfig.from_env()
    indexer = None
    while indexer is None:  # Kafka may still be starting (or restarting): wait for it, do not exit
        try:
            indexer = Indexer(config)
        except Exception as exc:  # NoBrokersAvailable and friends
            log.warning("cannot start yet (%s); retrying in 2 s", exc)
            time.sleep(2)

    def stop(*_: Any) -> None:
        indexer.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    indexer.run()


if __name__ == "__main__":
    main()
