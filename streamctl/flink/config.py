"""The Flink job's configuration: what the job needs to know (job.json beside the submission), the
cluster settings streamctl relies on, and the job file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from streamctl.kafka_access import KafkaAccess
from streamctl.names import JOB_NAME, StackNames
from streamctl.paths import STACK_DIR

if TYPE_CHECKING:
    from streamctl.access import PostgresAccess

# The job keeps its keyed state in RocksDB (job.py), which lives in the TaskManagers' managed memory.
TASKMANAGER_MANAGED_FRACTION = 0.3
# The REST API serves metrics (watermarks among them) fetched from the TaskManagers at most this long
# ago; the job's lag (pipeline/job_lag.py) is read from them. Flink's default, 10 s, would make a job
# that keeps up look up to 10 s behind.
METRICS_FETCH_INTERVAL_MS = 1000
JOB_FILE = STACK_DIR / "flink" / "job.py"

# The layout of the job's keyed state. A job restores only state of its own layout: 1 was the SQL OVER
# window that decided retries; 2 is RetryRule (stack/flink/java). Raise it with any change to the job's
# operators that a savepoint cannot carry over.
JOB_STATE_FORMAT = 2


@dataclass(frozen=True)
class JobConfig:
    """What the job needs to know; written as job.json next to the submission."""

    kafka_bootstrap: str
    kafka_properties: dict  # the Java client's security settings (security.protocol, sasl.*, ssl.*)
    topic: str
    aggregates_topic: str
    group_id: str
    jdbc_url: str
    jdbc_user: str
    jdbc_password: str
    window_seconds: int
    watermark_delay_seconds: int
    checkpoint_interval_seconds: int
    parallelism: int
    dedup_minutes: int
    job_name: str = JOB_NAME
    pipeline_jars: tuple[str, ...] = ()  # file: URIs the client ships with the job (a cluster without connectors)
    read_from_ms: int | None = None  # a replay: read the topic from this append time (None: from the start)
    emit_from_ms: int = 0  # a replay: write only windows starting at or after this
    state_format: int = JOB_STATE_FORMAT  # recorded in job.json: what state this job's savepoints hold

    @classmethod
    def of(cls, settings, kafka: KafkaAccess, postgres: PostgresAccess) -> "JobConfig":
        """The job's configuration from the settings; the addresses as the job's cluster reaches them."""
        flink = settings.flink
        properties = kafka.java_properties()
        properties.pop("bootstrap.servers")
        return cls(
            kafka_bootstrap=kafka.bootstrap, kafka_properties=properties, topic=settings.kafka.topic,
            aggregates_topic=settings.kafka.aggregates_topic, group_id=StackNames.of(settings).job_group,
            job_name=StackNames.of(settings).job_name,
            jdbc_url=postgres.jdbc_url(), jdbc_user=postgres.user, jdbc_password=postgres.password,
            window_seconds=flink.window_seconds, watermark_delay_seconds=flink.watermark_delay_seconds,
            checkpoint_interval_seconds=flink.checkpoint_interval_seconds, parallelism=flink.parallelism,
            dedup_minutes=flink.dedup_minutes,
        )

    @property
    def event_time_tolerance_ms(self) -> int:
        return event_time_tolerance_ms(self.watermark_delay_seconds)

    def to_json(self) -> dict:
        return {**asdict(self), "event_time_tolerance_ms": self.event_time_tolerance_ms}

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)  # it holds the database password
        path.write_text(json.dumps(self.to_json(), indent=2))
        return path


def event_time_tolerance_ms(watermark_delay_seconds: int) -> int:
    """How far transaction_date may be from Kafka's append time and still be the event time: under
    half the watermark delay, so no record can fall behind the watermark (see job.py)."""
    return max(0, (watermark_delay_seconds * 1000 - 1) // 2)


JOB_CONFIG_FILE = "job.json"


def submitted_job_config(flink_dir: Path) -> dict | None:
    """job.json as the running job was last submitted with (without the password), or None."""
    try:
        config = json.loads((flink_dir / JOB_CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    config.pop("jdbc_password", None)
    config.get("kafka_properties", {}).pop("sasl.jaas.config", None)  # holds the Kafka password
    return config
