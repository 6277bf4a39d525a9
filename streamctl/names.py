"""What the stack's job and consumer groups are called in the clusters, for every runtime."""

from __future__ import annotations

from dataclasses import dataclass

JOB_NAME = "streamctl-sales-aggregation"


@dataclass(frozen=True)
class StackNames:
    """What the stack's job and consumers are called in the clusters. The default stack keeps the short
    names; any other carries its own name, so stacks sharing a Flink or Kafka cluster stay apart."""

    job_name: str
    job_group: str
    indexer_group: str

    @classmethod
    def of(cls, settings) -> "StackNames":
        suffix = "" if settings.stack_name == "default" else f"-{settings.stack_name}"
        return cls(f"{JOB_NAME}{suffix}", f"streamctl-job{suffix}", f"streamctl-indexer{suffix}")

    def lag_groups(self, settings) -> dict[str, str]:
        """Consumer group -> the topic it reads, for the lag report."""
        return {self.job_group: settings.kafka.topic, self.indexer_group: settings.kafka.aggregates_topic}
