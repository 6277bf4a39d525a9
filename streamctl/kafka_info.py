"""Topic end offsets and consumer-group lag, for `status` and `dashboard`."""

from __future__ import annotations

from dataclasses import dataclass

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
