"""`streamctl job status`: the job as the JobManager and Kafka see it, in one report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from streamctl.flink.operations import current, savepoints
from streamctl.flink.placement import JobPlacement
from streamctl.kafka_access import KafkaAccess
from streamctl.kafka_info import end_offset, probe
from streamctl.pipeline.job_lag import JobLag, lowest_watermark_ms, refresh_metrics
from streamctl.waits import http_json


@dataclass
class VertexReport:
    name: str
    parallelism: int
    status: str
    records_in_per_s: float
    records_out_per_s: float
    backpressure: str  # ok | low | high | unknown


@dataclass
class PartitionLag:
    partition: int
    end_offset: int
    committed: int
    lag: int


@dataclass
class JobReport:
    job_id: str = ""
    name: str = ""
    state: str = "NOT SUBMITTED"
    parallelism: int = 0
    uptime_s: float = 0
    restarts: int = 0
    last_checkpoint: dict = field(default_factory=dict)  # age_s, size_bytes, duration_ms, id
    last_savepoint: str = ""
    watermark_delay_s: float | None = None  # wall clock minus the lowest watermark of the windowing
    lag_s: float | None = None  # seconds of ingest not read yet (pipeline/job_lag.py)
    falling_behind: bool = False
    vertices: list[VertexReport] = field(default_factory=list)
    source_lag: list[PartitionLag] = field(default_factory=list)


def _get(url: str) -> dict:
    status, body = http_json(url, 5)
    return body if status == 200 and isinstance(body, dict) else {}


def _metric_sum(rest: str, job_id: str, vertex_id: str, name: str) -> float:
    status, body = http_json(f"{rest}/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics?get={name}&agg=sum", 5)
    if status == 200 and isinstance(body, list) and body:
        return float(body[0].get("sum", 0.0))
    return 0.0


def job_report(p: JobPlacement, kafka: KafkaAccess | None, topic: str, group: str) -> JobReport:
    job = current(p)
    if job is None:
        return JobReport(name=p.job_name)
    rest = p.rest_url
    detail = _get(f"{rest}/jobs/{job.job_id}")
    # The state from the jobs overview, which is always current. The JobManager serves /jobs/<id> from a
    # cache (web.refresh-interval, 3 s): read just after `job stop`, it still says RUNNING.
    report = JobReport(job.job_id, p.job_name, job.state)
    now_ms = time.time() * 1000
    report.uptime_s = round(detail.get("duration", 0) / 1000, 1) if report.state == "RUNNING" else 0
    watermarks, read_marks = [], []
    after_sources = [v["id"] for v in detail.get("vertices", []) if not v.get("name", "").startswith("Source:")]
    if after_sources:
        refresh_metrics(rest, job.job_id, after_sources[0])  # watermarks and rates as of now, not the last caller's
    for vertex in detail.get("vertices", []):
        vid = vertex["id"]
        level = _get(f"{rest}/jobs/{job.job_id}/vertices/{vid}/backpressure").get("backpressure-level", "unknown")
        report.vertices.append(VertexReport(
            vertex.get("name", "")[:120], vertex.get("parallelism", 0), vertex.get("status", ""),
            round(_metric_sum(rest, job.job_id, vid, "numRecordsInPerSecond"), 1),
            round(_metric_sum(rest, job.job_id, vid, "numRecordsOutPerSecond"), 1), level))
        if vertex.get("name", "").startswith("Source:"):
            continue
        mark = lowest_watermark_ms(rest, job.job_id, vid)
        read_marks.append(mark)
        if mark is not None and ("Window" in vertex.get("name", "") or "window" in vertex.get("name", "")):
            watermarks.append(mark)
    report.parallelism = max((v.parallelism for v in report.vertices), default=0)
    if watermarks:
        report.watermark_delay_s = round((now_ms - min(watermarks)) / 1000, 1)
    if read_marks and None not in read_marks and report.state == "RUNNING":
        delay_ms = int(p.submitted().get("watermark_delay_seconds") or p.config.watermark_delay_seconds) * 1000
        lag = JobLag(round(max(0.0, (now_ms - delay_ms - min(m for m in read_marks if m is not None)) / 1000), 1))
        report.lag_s, report.falling_behind = lag.seconds, lag.falling_behind
    status, metrics = http_json(f"{rest}/jobs/{job.job_id}/metrics?get=numRestarts", 5)
    if status == 200 and isinstance(metrics, list) and metrics:
        report.restarts = int(float(metrics[0].get("value", 0)))
    checkpoints = _get(f"{rest}/jobs/{job.job_id}/checkpoints")
    completed = (checkpoints.get("latest") or {}).get("completed") or {}
    if completed:
        report.last_checkpoint = {
            "id": completed.get("id"), "age_s": round((now_ms - completed.get("latest_ack_timestamp", now_ms)) / 1000, 1),
            "size_bytes": completed.get("checkpointed_size", completed.get("state_size", 0)),
            "duration_ms": completed.get("end_to_end_duration", 0)}
    savepoint = (checkpoints.get("latest") or {}).get("savepoint") or {}
    listed = savepoints(p)
    report.last_savepoint = savepoint.get("external_path") or (listed[-1].location if listed else "")
    if kafka is not None:
        try:
            report.source_lag = partition_lag(kafka, group, topic)
        except Exception:  # noqa: BLE001 - Kafka away: the report says so by an empty lag, it does not fail
            report.source_lag = []
    return report


def partition_lag(kafka: KafkaAccess, group: str, topic: str) -> list[PartitionLag]:
    """Per partition: end offset, the offset the job committed with its last checkpoint, the lag."""
    from confluent_kafka import TopicPartition

    with probe(kafka, topic, group, timeout_s=5) as (consumer, partitions):
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=5)
        lags = []
        for tp in committed:
            end = end_offset(consumer, topic, tp.partition, timeout_s=5)
            done = tp.offset if tp.offset >= 0 else 0
            lags.append(PartitionLag(tp.partition, end, done, max(0, end - done)))
        return lags
