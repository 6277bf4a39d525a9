"""How fast the Flink job works through records already in the topic: stop the job, write N
transactions, replay from the window they start in, and time until both sinks hold every one of them.
Runs on the stack's own topic and job (the replay leaves the job running as the stack's job)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

from streamctl.bench.cpu import CpuWatch, service_processes
from streamctl.bench.suite import BRANDS, CATEGORIES, PAYMENTS
from streamctl.flink import operations
from streamctl.flink.placement import placement_of
from streamctl.flink.sinks import erase_windows, wait_until_indexed
from streamctl.kafka_info import records_since, retained_from_ms
from streamctl.names import StackNames
from streamctl.pipeline.job_lag import input_watermark_ms as job_watermark_ms
from streamctl.pipeline.job_lag import running_job_id
from streamctl.waits import http_json


def _transactions(count: int, run: str):
    """Valid, distinct transactions stamped with the time they are written (so the job takes their
    own time as event time: within the tolerance of the topic's append time)."""
    for i in range(count):
        now = time.time()
        date = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        cents, quantity = 1000 + (i * 37) % 49000, 1 + i % 5
        yield (f'{{"transaction_id":"{run}-{i}","product_id":{1000 + i % 9000},"product_name":"Item",'
               f'"product_category":"{CATEGORIES[i % 5]}","product_price":{cents / 100},"product_quantity":{quantity},'
               f'"product_brand":"{BRANDS[(i // 5) % 5]}","total_amount":{cents * quantity / 100},"currency":"BRL",'
               f'"customer_id":{1 + i % 10000},"transaction_date":"{date}","payment_method":"{PAYMENTS[(i // 25) % 4]}"}}'
               ).encode()


def _counted(runtime, from_ms: int) -> tuple[int, int]:
    """Transactions in the windows from `from_ms`: in PostgreSQL, in Elasticsearch."""
    endpoints = runtime.endpoints()
    since = datetime.fromtimestamp(from_ms / 1000, timezone.utc)
    with endpoints.postgres.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT COALESCE(SUM(transaction_count), 0) FROM sales_summary WHERE window_start >= %s", (since,))
        in_postgres = int(cur.fetchone()[0])
    index = runtime.settings.elasticsearch.index
    status, body = endpoints.elasticsearch.request(
        f"/{index}/_search", 10, "POST", {"size": 0, "query": {"range": {"window_start": {"gte": since.isoformat()}}},
                                          "aggs": {"n": {"sum": {"field": "transaction_count"}}}})
    in_elasticsearch = int((body.get("aggregations") or {}).get("n", {}).get("value") or 0) if status == 200 else 0
    return in_postgres, in_elasticsearch


def input_watermark_ms(rest_url: str, job_name: str) -> int:
    """The lowest input watermark of the running job's operators after its sources (0: none yet)."""
    job_id = running_job_id(rest_url, job_name)
    return (job_watermark_ms(rest_url, job_id) or 0) if job_id else 0


def _full_state_bytes_after(rest_url: str, job_name: str, after_ms: float, timeout_s: float = 120) -> int | None:
    """The full state size (not the incremental delta) of the job's first checkpoint completed after
    `after_ms`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job_id = running_job_id(rest_url, job_name)
        if job_id:
            status, body = http_json(f"{rest_url}/jobs/{job_id}/checkpoints", 5)
            completed = ((body or {}).get("latest") or {}).get("completed") or {} if status == 200 else {}
            if completed.get("latest_ack_timestamp", 0) > after_ms:
                return int(completed.get("state_size") or 0) or None
        time.sleep(1)
    return None


def _cpu_us_per_record(cpu: dict | None, service: str, records: int) -> float | None:
    """A service's CPU time while the job caught up, per record it read (TaskManagers summed)."""
    if not cpu or not records:
        return None
    percent = sum(float(figures["percent_of_one_core"]) for name, figures in cpu["by_service"].items()
                  if name.startswith(service))
    return round(percent / 100 * cpu["seconds"] / records * 1e6, 1)


def _write_all(producer, topic: str, values) -> None:
    for value in values:
        while True:
            try:
                producer.produce(topic, value=value)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(300)


def bench_job(runtime, records: int = 1_000_000, preload: int = 0, timeout_s: float = 1800) -> dict:
    """`preload` other transactions are written first: the replay reads them first, so the retry state
    holds them while it works through the N. Every window the replay covers is written, so the stack
    stays exact for validate."""
    from confluent_kafka import Producer

    settings = runtime.settings
    keep = settings.flink.savepoints_kept
    endpoints = runtime.endpoints()
    placement = placement_of(runtime)
    operations.stop(placement, keep)  # the records wait in the topic, as after an outage
    window_ms = settings.flink.window_seconds * 1000
    producer = Producer({**endpoints.kafka.librdkafka(), "acks": "all", "linger.ms": 50, "compression.type": "lz4",
                         "queue.buffering.max.messages": 1_000_000, "batch.num.messages": 10_000})
    run = f"bench-{uuid.uuid4().hex[:8]}"
    from_ms = int(time.time() * 1000) // window_ms * window_ms  # the replay recomputes every window from here
    started = time.monotonic()
    # The preloaded ids come first, so the retry state holds them while the job works through the others.
    _write_all(producer, settings.kafka.topic, _transactions(preload, f"{run}-preload"))
    _write_all(producer, settings.kafka.topic, _transactions(records, run))
    write_s = time.monotonic() - started
    written_by_ms = int(time.time() * 1000)

    def erase(emit_from: int | None) -> str:
        wait_until_indexed(endpoints.kafka, StackNames.of(settings).indexer_group,
                           settings.kafka.aggregates_topic)
        return erase_windows(endpoints, settings.elasticsearch.index, emit_from)

    started = time.monotonic()
    watch = CpuWatch(service_processes(runtime))  # the replayed job's threads start meanwhile: counted from 0
    operations.replay(placement, keep, from_ms, erase, lambda: retained_from_ms(endpoints.kafka, settings.kafka.topic))
    running_s = time.monotonic() - started
    counted, caught_up_s, cpu = (0, 0), None, None
    delay_ms = settings.flink.watermark_delay_seconds * 1000
    while time.monotonic() - started < timeout_s:
        if caught_up_s is None and input_watermark_ms(placement.rest_url, placement.job_name) >= written_by_ms - delay_ms:
            caught_up_s = time.monotonic() - started  # every record written has been through the operators
            cpu = watch.read()
        counted = _counted(runtime, from_ms)
        if min(counted) >= records + preload:
            break
        time.sleep(0.5)
    exact_s = time.monotonic() - started
    # The replay reads from the dedup horizon before the window: earlier records (and heartbeats) too.
    read = records_since(endpoints.kafka, settings.kafka.topic, placement.effective_config().read_from_ms or 0)
    state_bytes = _full_state_bytes_after(placement.rest_url, placement.job_name, time.time() * 1000)
    ids = records + preload
    return {"records": records, "preloaded_ids_in_the_horizon": preload, "records_read_by_the_job": read,
            "write_s": round(write_s, 1),
            "submit_to_running_s": round(running_s, 1),
            "until_both_sinks_hold_all_s": round(exact_s, 1), "counted_postgres": counted[0],
            "counted_elasticsearch": counted[1],
            "caught_up_s": round(caught_up_s, 1) if caught_up_s else None,
            "records_read_per_s_until_caught_up": round(read / max((caught_up_s or exact_s) - running_s, 0.001)),
            "window_close_bound_s": settings.flink.window_seconds + settings.flink.watermark_delay_seconds,
            "parallelism": placement.effective_config().parallelism, "goal_records_per_s": 50_000,
            "taskmanager_cpu_us_per_record_read": _cpu_us_per_record(cpu, "flink-taskmanager", read),
            # Every id read is in the retry state (the horizon outlasts the run): its full size per id.
            "checkpointed_state_bytes": state_bytes, "ids_in_the_retry_state": ids,
            "state_bytes_per_id": round(state_bytes / ids, 1) if state_bytes else None,
            "state_mb_at_5000_ids_per_s_over_the_horizon": round(
                state_bytes / ids * 5000 * 60 * settings.flink.dedup_minutes / 1e6) if state_bytes else None,
            "cpu_until_caught_up": cpu or watch.read()}
