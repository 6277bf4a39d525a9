"""Topic end offsets and consumer-group lag, for `status` and `dashboard`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

from streamctl.kafka_access import KafkaAccess


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    end_offsets: int  # summed over partitions
    committed: int
    lag: int


def lag_report(kafka: KafkaAccess, groups: dict[str, str]) -> list[GroupLag]:
    """groups: consumer group -> the topic it reads. Raises on an unreachable broker."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(**kafka.kafka_python(), request_timeout_ms=5000)
    consumer = KafkaConsumer(**kafka.kafka_python(), enable_auto_commit=False, request_timeout_ms=5000)
    try:
        report = []
        for group, topic in groups.items():
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            ends = consumer.end_offsets(partitions) if partitions else {}
            committed = admin.list_group_offsets({group: None}).get(group, {})
            done = sum(committed[tp].offset for tp in partitions if tp in committed and committed[tp].offset >= 0)
            total = sum(ends.values())
            report.append(GroupLag(group, topic, total, done, max(0, total - done)))
        return report
    finally:
        consumer.close()
        admin.close()


@contextlib.contextmanager
def probe(kafka: KafkaAccess, topic: str, group: str, timeout_s: float = 10,
          log_level: int = 0) -> Iterator[tuple[Any, list[int]]]:
    """A short-lived librdkafka consumer that commits nothing, and the topic's partitions (none when
    the topic does not exist). Listing a topic's partitions is done here and nowhere else."""
    from confluent_kafka import Consumer

    consumer = Consumer({**kafka.librdkafka(), "group.id": group, "enable.auto.commit": False, "log_level": log_level})
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        yield consumer, sorted(metadata.partitions) if metadata and metadata.partitions else []
    finally:
        consumer.close()


def end_offset(consumer: Any, topic: str, partition: int, timeout_s: float = 10) -> int:
    """One partition's end offset (the high watermark), through a probe's consumer."""
    from confluent_kafka import TopicPartition

    return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)[1]


def retained_from_ms(kafka: KafkaAccess, topic: str) -> int | None:
    """When retention has deleted the start of a partition: the newest of the partitions' first
    retained timestamps (before it, some partition's records are gone). None when nothing was deleted."""
    from confluent_kafka import TopicPartition

    with probe(kafka, topic, "streamctl-retention-probe") as (consumer, partitions):
        firsts = []
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if low > 0 and high > low:
                consumer.assign([TopicPartition(topic, partition, low)])
                record = consumer.poll(10)
                if record is not None and record.error() is None:
                    firsts.append(record.timestamp()[1])
        return max(firsts) if firsts else None


def records_since(kafka: KafkaAccess, topic: str, since_ms: int) -> int:
    """How many records the topic holds from `since_ms` (by timestamp) to its end: what a job
    started at that time reads."""
    from confluent_kafka import TopicPartition

    with probe(kafka, topic, "streamctl-offsets-probe") as (consumer, partitions):
        starts = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], timeout=10)
        total = 0
        for start in starts:
            high = end_offset(consumer, topic, start.partition)
            total += max(0, high - start.offset) if start.offset >= 0 else 0
        return total


def end_offsets(kafka: KafkaAccess, topic: str) -> dict[int, int]:
    """Each partition's end offset now."""

    with probe(kafka, topic, "streamctl-offsets-probe") as (consumer, partitions):
        return {p: end_offset(consumer, topic, p) for p in partitions}


HEARTBEAT_PREFIX = b'{"heartbeat":'  # how the producer's heartbeat records begin (orjson, no spaces)


def transactions_since(kafka: KafkaAccess, topic: str, starts: dict[int, int]) -> int:
    """Records from `starts` (end_offsets earlier) to the end offsets now, heartbeats left out: read,
    not inferred from a counter that may lag the log."""
    from confluent_kafka import TopicPartition

    total = 0
    with probe(kafka, topic, "streamctl-offsets-probe") as (consumer, partitions):
        for partition in partitions:
            start = starts.get(partition, 0)
            high = end_offset(consumer, topic, partition)
            if high <= start:
                continue
            consumer.assign([TopicPartition(topic, partition, start)])
            position = start
            while position < high:
                batch = consumer.consume(10_000, timeout=5)
                if not batch:
                    raise TimeoutError(f"{topic}[{partition}] gave no record at offset {position} of {high}")
                for record in batch:
                    if record.error() is not None:
                        continue
                    position = record.offset() + 1
                    if record.offset() < high and not (record.value() or b"").startswith(HEARTBEAT_PREFIX):
                        total += 1
    return total
