"""The producer API and the indexer: streamctl's own Python services, run from this interpreter."""

from __future__ import annotations

import sys

from streamctl.names import StackNames
from streamctl.net import http_url
from streamctl.pipeline.indexer_status import healthy
from streamctl.runtimes.local.base import Launch, LocalService
from streamctl.waits import Check


class Producer(LocalService):
    name = "producer"
    stop_timeout_s = 15.0

    @property
    def url(self) -> str:
        return http_url(self.ctx.host, self.ctx.settings.ports.producer)

    def prepare(self) -> None:
        (self.dir / "metrics").mkdir(parents=True, exist_ok=True)
        for stale in (self.dir / "metrics").glob("worker-*.json"):
            stale.unlink()

    def launch(self) -> Launch:
        s = self.ctx.settings
        env = {
            **self.ctx.base_env,
            **self.ctx.kafka.to_env("PRODUCER"),
            "PRODUCER_TOPIC": s.kafka.topic,
            "PRODUCER_MAX_BODY_BYTES": str(s.producer.max_body_bytes),
            "PRODUCER_MAX_BATCH_RECORDS": str(s.producer.max_batch_records),
            "PRODUCER_HEARTBEAT_INTERVAL_MS": str(s.producer.heartbeat_interval_ms),
            "PRODUCER_LINGER_MS": str(s.producer.linger_ms),
            "PRODUCER_METRICS_DIR": str(self.dir / "metrics"),
            "PRODUCER_MAX_LAG_SECONDS": str(s.producer.max_lag_seconds),
            "PRODUCER_FLINK_URL": self.ctx.endpoints.flink_url,
            "PRODUCER_JOB_NAME": StackNames.of(s).job_name,
            "PRODUCER_WATERMARK_DELAY_MS": str(s.flink.watermark_delay_seconds * 1000),
        }
        argv = (
            sys.executable, "-m", "granian", "--interface", "asgi", "--host", self.ctx.host,
            "--port", str(s.ports.producer), "--workers", str(s.producer.workers), "--no-ws", "--http", "1",
            "--backlog", "2048", "--http1-header-read-timeout", "10000", "--log-level", "warning",
            "streamctl.pipeline.producer:app",
        )
        return Launch(argv, env, self.dir)

    def endpoint(self) -> str:
        return self.url


class Indexer(LocalService):
    name = "indexer"
    stop_timeout_s = 15.0

    @property
    def status_file(self):
        return self.dir / "status.json"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.status_file.unlink(missing_ok=True)

    def launch(self) -> Launch:
        s = self.ctx.settings
        env = {
            **self.ctx.base_env,
            **self.ctx.kafka.to_env("INDEXER"),
            "INDEXER_TOPIC": s.kafka.aggregates_topic,
            "INDEXER_GROUP_ID": StackNames.of(s).indexer_group,
            **self.ctx.endpoints.elasticsearch.to_env("INDEXER"),
            "INDEXER_INDEX": s.elasticsearch.index,
            "INDEXER_STATUS_FILE": str(self.status_file),
            "INDEXER_DEAD_LETTER_FILE": str(self.dir / "dead-letters.ndjson"),
        }
        return Launch((sys.executable, "-m", "streamctl.pipeline.indexer"), env, self.dir)

    def ready(self) -> Check:
        return healthy(self.status_file)  # what its readiness command (python -m ...indexer_status) runs
