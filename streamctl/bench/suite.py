"""The benchmark suite: start-up, idle memory, validation speed, ingest. Each returns a dict of
figures; the CLI prints them and writes them as JSON."""

from __future__ import annotations

import os
import platform
import time

from streamctl import lifecycle, provision
from streamctl.bench.cpu import CpuWatch, service_processes
from streamctl.config import Settings
from streamctl.endpoints import Endpoints
from streamctl.flink.config import event_time_tolerance_ms
from streamctl.topic_scan import TopicScanner

CATEGORIES = ("Electronics", "Books", "Clothing", "Home", "Toys")
BRANDS = ("Samsung", "Apple", "Nike", "Sony", "Adidas")
PAYMENTS = ("Credit Card", "Debit Card", "PayPal", "Pix")


def machine() -> dict:
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    return {"cores": os.cpu_count(), "memory_gib": round(mem / 2**30, 1), "python": platform.python_version(),
            "system": platform.platform()}


def bench_startup(runtime, runs: int = 1) -> dict:
    """`down` then `up` with artifacts cached, timed until the job is RUNNING (`up` returns then)."""
    seconds, profiles = [], []
    for _ in range(runs):
        lifecycle.down(runtime)
        started = time.monotonic()
        watch = CpuWatch({})
        lifecycle.up(runtime)
        seconds.append(time.monotonic() - started)
        watch.count_from_start(service_processes(runtime))
        profiles.append(watch.read())
    return {"up_seconds": [round(s, 1) for s in seconds], "best_s": round(min(seconds), 1), "goal_s": 20,
            "up_cpu_profile": profiles[seconds.index(min(seconds))]}


def bench_idle(runtime, settle_s: int = 20, cpu_s: int = 60) -> dict:
    """The idle stack: each service's RSS, and the CPU all of them (with the watchdog and the live
    view) use over `cpu_s`, `settle_s` after `up`, with each service's busiest threads."""
    time.sleep(settle_s)
    status = lifecycle.status(runtime)
    per_service = {s.name: round(s.rss_bytes / 2**20) for s in status.services}
    total = sum(s.rss_bytes for s in status.services)
    watch = CpuWatch(service_processes(runtime))
    time.sleep(cpu_s)
    cpu = watch.read()
    return {"idle_rss_mib": per_service, "total_gib": round(total / 2**30, 2), "goal_gib": 1.5,
            "idle_cpu_percent_of_one_core": cpu["services_percent_of_one_core"],
            "idle_cpu_percent_by_service": {name: figures["percent_of_one_core"]
                                            for name, figures in cpu["by_service"].items()},
            "idle_cpu_profile": cpu, "settle_s": settle_s, "cpu_window_s": cpu_s, "goal_cpu_percent": 5}


def _records(count: int, window_ms: int, start_ms: int):
    for i in range(count):
        ts = start_ms + (i * 7) % (10 * window_ms)
        seconds, millis = divmod(ts, 1000)
        date = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
        cents = 1000 + (i * 37) % 49000
        quantity = 1 + i % 5
        value = (f'{{"transaction_id":"00000000-0000-4000-8000-{i:012d}","product_id":{1000 + i % 9000},'
                 f'"product_name":"Item","product_category":"{CATEGORIES[i % 5]}","product_price":{cents / 100},'
                 f'"product_quantity":{quantity},"product_brand":"{BRANDS[(i // 5) % 5]}",'
                 f'"total_amount":{cents * quantity / 100},"currency":"BRL","customer_id":{1 + i % 10000},'
                 f'"transaction_date":"{date}","payment_method":"{PAYMENTS[(i // 25) % 4]}"}}')
        yield value.encode(), ts


def bench_validate(settings: Settings, records: int = 1_000_000) -> dict:
    """Write `records` transactions to a scratch topic, then time validate's scan and recomputation."""
    from confluent_kafka import Producer
    from kafka.admin import KafkaAdminClient

    endpoints = Endpoints.of(settings)
    topic = f"bench-validate-{int(time.time())}"
    provision.create_topics(endpoints.kafka, {topic: {}}, settings.kafka.partitions)
    producer = Producer({**endpoints.kafka.librdkafka(), "acks": 1, "linger.ms": 50,
                         "queue.buffering.max.messages": 1_000_000, "batch.num.messages": 100_000})
    window_ms = settings.flink.window_seconds * 1000
    started = time.monotonic()
    for value, ts in _records(records, window_ms, int(time.time() * 1000) - 3600_000):
        while True:
            try:
                producer.produce(topic, value=value, timestamp=ts)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(120)
    produced_s = time.monotonic() - started
    tolerance_ms = event_time_tolerance_ms(settings.flink.watermark_delay_seconds)

    def scan(workers: int | None) -> tuple[float, TopicScanner]:
        started = time.monotonic()
        scanner = TopicScanner(endpoints.kafka, topic, window_ms, tolerance_ms, settings.flink.dedup_minutes * 60_000,
                               workers)
        try:
            scanner.advance()
        finally:
            scanner.close()
        assert scanner.transactions == records, (scanner.transactions, records)
        return time.monotonic() - started, scanner

    try:
        one_s, one = scan(1)  # the baseline: one process reads every partition
        scan_s, scanner = scan(None)
        assert scanner.expected == one.expected and scanner.set_aside() == one.set_aside()
    finally:
        admin = KafkaAdminClient(**endpoints.kafka.kafka_python())
        admin.delete_topics([topic])
        admin.close()
    return {"records": records, "windows": len(scanner.expected), "validate_scan_s": round(scan_s, 1),
            "records_per_s": round(records / scan_s), "workers": scanner.workers,
            "one_process_scan_s": round(one_s, 1), "speedup_vs_one_process": round(one_s / scan_s, 2),
            "goal_s": 10, "setup_produce_s": round(produced_s, 1)}
