"""Ingest benchmark: the producer API against the Flask development-server baseline (flush per
request), same machine, same Kafka, same load generator (wrk), in one run; plus the batch endpoint.

Records/s counts acknowledged records only (2xx answers, per record for batches), and each figure is
cross-checked against the topic's end offsets: what the topic grew by, less the producer's own
heartbeats, must be at least what was acknowledged."""

from __future__ import annotations

import dataclasses
import http.client
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

from streamctl import provision
from streamctl.bench.cpu import CpuWatch
from streamctl.endpoints import Endpoints
from streamctl.errors import PreflightError, StartupError
from streamctl.kafka_access import KafkaAccess
from streamctl.kafka_info import end_offsets, transactions_since
from streamctl.waits import http_ok

LUA = Path(__file__).with_name("post_transaction.lua")
BASELINE_TOPIC = "bench-baseline"


@dataclass(frozen=True)
class IngestFigure:
    server: str
    acknowledged_per_s: float  # 2xx answers (records, for batches) per second
    acknowledged: int
    requests: int
    non_2xx: int
    errors: int
    latency_avg_ms: float
    seconds: float
    topic_grew_by: int = -1  # end offsets after minus before, heartbeats excluded

    def counted(self, topic_grew_by: int) -> "IngestFigure":
        return dataclasses.replace(self, topic_grew_by=topic_grew_by)


def end_offsets_total(kafka: KafkaAccess, topic: str) -> int:
    return sum(end_offsets(kafka, topic).values())


def _wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise PreflightError("wrk is not installed (the load generator of this benchmark)",
                             hint="apt-get install wrk (make bench installs it)")
    return path


def _latency_ms(text: str) -> float:
    match = re.search(r"Latency\s+([\d.]+)(us|ms|s)", text)
    if not match:
        return float("nan")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def wrk_argv(base_url: str, seconds: int, connections: int) -> list[str]:
    """One wrk thread posting single fresh transactions (post_transaction.lua) for `seconds`."""
    return [_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA), base_url]


def run_wrk(name: str, base_url: str, seconds: int, connections: int) -> IngestFigure:
    out = subprocess.run(wrk_argv(base_url, seconds, connections), capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    return wrk_figure(name, out, seconds)


def wrk_figure(name: str, out: str, seconds: int) -> IngestFigure:
    total, rate = re.search(r"(\d+) requests in", out), re.search(r"Requests/sec:\s+([\d.]+)", out)
    if total is None or rate is None:
        raise StartupError(f"wrk printed no figures for {name}", details=out[-1000:])
    requests, rps = int(total.group(1)), float(rate.group(1))
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    acknowledged = max(0, requests - non_2xx - errors)
    elapsed = requests / rps if rps else float(seconds)
    return IngestFigure(name, acknowledged / elapsed, acknowledged, requests, non_2xx, errors, _latency_ms(out), seconds)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def baseline_figure(endpoints: Endpoints, seconds: int, connections: int) -> IngestFigure:
    provision.create_topics(endpoints.kafka, {BASELINE_TOPIC: {}}, 4)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "streamctl.bench.flask_baseline", "--port", str(port),
                               "--bootstrap", endpoints.kafka_bootstrap, "--topic", BASELINE_TOPIC],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not http_ok(f"http://127.0.0.1:{port}/health")[0]:
            if time.monotonic() > deadline or server.poll() is not None:
                raise PreflightError("the Flask baseline server did not start", hint="is Flask installed?")
            time.sleep(0.3)
        before = end_offsets_total(endpoints.kafka, BASELINE_TOPIC)
        figure = run_wrk("Flask dev server, kafka-python acks=1, flush per request (baseline)",
                         f"http://127.0.0.1:{port}", seconds, connections)
        return figure.counted(end_offsets_total(endpoints.kafka, BASELINE_TOPIC) - before)
    finally:
        server.terminate()
        server.wait(timeout=10)


def batch_figure(producer_url: str, seconds: int, batch_size: int = 1000, clients: int = 2) -> IngestFigure:
    """POST /transactions with batches of `batch_size` fresh records from `clients` threads."""
    host, port = producer_url.removeprefix("http://").split(":")
    accepted, failed, latencies = [0], [0], []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def body() -> bytes:
        records = []
        for i in range(batch_size):
            price = 10 + (i % 490) + 0.25
            quantity = 1 + i % 5
            records.append({"transaction_id": str(uuid.uuid4()), "product_id": 1000 + i, "product_name": "Item",
                            "product_category": ("Electronics", "Books", "Clothing", "Home", "Toys")[i % 5],
                            "product_price": price, "product_quantity": quantity,
                            "product_brand": ("Samsung", "Apple", "Nike", "Sony", "Adidas")[i % 5],
                            "total_amount": price * quantity, "currency": "BRL", "customer_id": 1 + i,
                            "transaction_date": "now",
                            "payment_method": ("Credit Card", "Debit Card", "PayPal", "Pix")[i % 4]})
        return orjson.dumps(records)

    def client() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        while time.monotonic() < stop_at:
            payload = body()
            started = time.monotonic()
            conn.request("POST", "/transactions", payload, {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            with lock:
                latencies.append(time.monotonic() - started)
                if response.status == 200:
                    accepted[0] += orjson.loads(data)["accepted"]
                else:
                    failed[0] += batch_size
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    mean_ms = 1000 * sum(latencies) / len(latencies) if latencies else float("nan")
    return IngestFigure(f"producer API, POST /transactions x{batch_size}", accepted[0] / elapsed, accepted[0],
                        len(latencies), failed[0], 0, mean_ms, elapsed)


def counted_in_topic(endpoints: Endpoints, topic: str, run) -> IngestFigure:
    """Run a figure against the producer API and count what its topic grew by, heartbeats excluded."""
    before = end_offsets(endpoints.kafka, topic)
    figure = run()
    return figure.counted(transactions_since(endpoints.kafka, topic, before))


def bench_ingest(endpoints: Endpoints, topic: str, seconds: int = 20, connections: int = 32,
                 processes: dict[str, list[int]] | None = None) -> dict:
    """The three figures; with `processes` (the stack's, by service), where the CPU went during the
    producer API's two, which is what bounds them on a machine the stack shares with the client."""
    baseline = baseline_figure(endpoints, seconds, connections)
    watch = CpuWatch(processes or {})
    ours = counted_in_topic(endpoints, topic, lambda: run_wrk("producer API (granian + orjson), POST /transaction",
                                                              endpoints.producer_url, seconds, connections))
    single_cpu = watch.read()
    watch = CpuWatch(processes or {})
    batch = counted_in_topic(endpoints, topic, lambda: batch_figure(endpoints.producer_url, seconds))
    batch_cpu = watch.read()
    figures = [baseline, ours, batch]
    return {
        "cpu_during": {ours.server: single_cpu, batch.server: batch_cpu},
        "figures": [f.__dict__ for f in figures],
        "ratio_single_vs_baseline": (ours.acknowledged_per_s / baseline.acknowledged_per_s
                                     if baseline.acknowledged_per_s else None),
        # every acknowledged record must be in the topic (more is possible: a 2xx lost on the way)
        "topic_holds_every_acknowledged_record": all(f.topic_grew_by >= f.acknowledged for f in figures),
        "connections": connections,
    }
