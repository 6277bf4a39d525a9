"""Exactness at the edges, on a real local stack: retries, hostile records written straight to the
topic, sums at the contract's limits, and validate refusing to say EXACT about what it has not judged."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from decimal import Decimal

import pytest
import yaml

from streamctl.endpoints import Endpoints
from streamctl.exit_codes import ExitCode
from streamctl.pipeline.contract import MAX_MONEY, format_event_time
from streamctl.pipeline.job_lag import job_lag
from streamctl.provision import StackNames
from streamctl.runtimes.local.runtime import LocalRuntime
from streamctl.waits import http_json
from tests.integration.stackutil import (
    TEST_PORTS, Poster, assert_exact, cli, post_json, running_stack, settings_of, transaction, validate_json,
    wait_for,
)
from tests.integration.stackutil import pg_connect, job_exceptions

pytestmark = pytest.mark.integration
WINDOW_S = 5  # short windows: shorter waits for the last one to close
MAX_LAG_S = 5


@pytest.fixture(scope="module")
def stack():
    # Admission control on (producer.max_lag_seconds): the test that freezes the TaskManager needs it.
    with running_stack("it-edges", window_seconds=WINDOW_S, producer={"max_lag_seconds": MAX_LAG_S}) as config:
        yield config


@pytest.fixture(scope="module")
def api(stack):
    return f"http://127.0.0.1:{TEST_PORTS['producer']}"


def produce(stack, values: list[tuple[bytes | None, bytes | None]]) -> None:
    """Write (key, value) records straight to the topic, as a client that bypasses the API would."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": f"127.0.0.1:{TEST_PORTS['kafka']}", "acks": "all"})
    for key, value in values:
        producer.produce(settings_of(stack).kafka.topic, key=key, value=value)
    assert producer.flush(30) == 0


def sink_counts(stack, category: str) -> tuple[int, int]:
    """Transactions counted for one category in PostgreSQL and in Elasticsearch."""
    with pg_connect(stack) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(sum(transaction_count), 0) FROM sales_summary WHERE category = %s", (category,))
        postgres = int(cur.fetchone()[0])
    conn.close()
    settings = settings_of(stack)
    url = f"http://127.0.0.1:{settings.ports.elasticsearch}/{settings.elasticsearch.index}"
    http_json(f"{url}/_refresh", 10, "POST", {})
    query = {"size": 0, "query": {"term": {"category": category}},
             "aggs": {"n": {"sum": {"field": "transaction_count"}}}}
    _, body = http_json(f"{url}/_search", 10, "POST", query)
    return postgres, int(body["aggregations"]["n"]["value"])


# -- no EXACT without a judgment (these run first, while the topic is still empty) -------------------

def test_validate_on_an_empty_topic_is_inconclusive_not_exact(stack, capsys):
    code, report = validate_json(stack, capsys)
    assert code == ExitCode.INCONCLUSIVE, report
    assert report["verdict"] == "inconclusive"
    assert "nothing to judge" in report["inconclusive"][0]["reason"]


def test_validate_with_a_partition_never_written_is_inconclusive(stack, capsys, tmp_path):
    """A topic with three partitions, transactions in one: the job's watermark cannot move."""
    settings = settings_of(stack)
    topic = f"edges-silent-{uuid.uuid4().hex[:8]}"
    from streamctl import provision
    provision.create_topics(Endpoints.of(settings).kafka, {topic: {}}, 3)
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{settings.ports.kafka}"})
    payload = {**transaction(), "transaction_date": format_event_time(int(time.time() * 1000))}
    producer.produce(topic, value=json.dumps(payload).encode(), partition=0)
    producer.flush(10)
    other = tmp_path / "other-topic.yaml"
    other.write_text(yaml.safe_dump({**yaml.safe_load(stack.read_text()), "kafka": {"partitions": 3, "topic": topic}}))
    code, report = validate_json(other, capsys, "--wait", "3s")
    assert code == ExitCode.INCONCLUSIVE, report
    assert "partition(s) 1, 2" in report["inconclusive"][0]["reason"]
    assert "heartbeat" in report["inconclusive"][0]["hint"]


def test_validate_with_the_producer_stopped_is_inconclusive_and_says_why(stack, api, capsys):
    runtime = LocalRuntime(settings_of(stack))
    assert post_json(f"{api}/transaction", transaction(category="Stopped"))[0] == 201
    runtime.supervisor.stop("producer")
    try:
        code, report = validate_json(stack, capsys, "--wait", "3s")
        assert code == ExitCode.INCONCLUSIVE, report
        assert report["pending_windows"] and report["sinks"]["postgres"]["exact"]
        (reason,) = report["inconclusive"]
        assert "the producer is stopped" in reason["reason"] and "streamctl up" in reason["hint"]
        capsys.readouterr()
        assert cli(stack, "validate") == ExitCode.INCONCLUSIVE
        out = capsys.readouterr().out
        assert "INCONCLUSIVE" in out and "EXACT" not in out
    finally:
        assert cli(stack, "up") == ExitCode.OK
    assert_exact(stack, capsys)


# -- retries counted once ---------------------------------------------------------------------------

def test_retries_at_once_and_after_the_window_closed_are_counted_once_under_load(stack, api, capsys):
    n = 15
    at_once = [transaction(category="RetryNow", price=3.5) for _ in range(n)]
    later = [transaction(category="RetryLater", price=7.25, quantity=2) for _ in range(n)]
    jid, exceptions = job_exceptions(stack)
    with Poster(api, threads=2):
        for payload in at_once + later:
            assert post_json(f"{api}/transaction", payload)[0] == 201
        for payload in at_once:  # a client retrying at once (its first answer was lost)
            assert post_json(f"{api}/transaction", payload)[0] == 201
        status, _, body = post_json(f"{api}/transactions", at_once[:5] * 2)  # and twice within one batch
        assert status == 200 and body["accepted"] == 10
        time.sleep(WINDOW_S + 4)  # the first copies' window has closed
        for payload in later:
            assert post_json(f"{api}/transaction", payload)[0] == 201
    report = assert_exact(stack, capsys)
    assert report["topic"]["duplicates_dropped"] >= 2 * n + 10
    assert sink_counts(stack, "RetryNow") == (n, n)
    assert sink_counts(stack, "RetryLater") == (n, n)
    with pg_connect(stack) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(sum(duplicate_count), 0) FROM rejected_summary")
        assert int(cur.fetchone()[0]) == report["topic"]["duplicates_dropped"]
    conn.close()
    assert job_exceptions(stack) == (jid, exceptions)


def test_a_sink_that_counts_a_retry_is_a_mismatch(stack, capsys):
    """validate's dedup is not decoration: a PostgreSQL row with the retry counted fails it."""
    tamper = ("UPDATE sales_summary SET transaction_count = transaction_count + %s, revenue = revenue + %s"
              " WHERE window_start = %s AND category = 'RetryNow'")
    with pg_connect(stack) as conn, conn.cursor() as cur:
        cur.execute("SELECT window_start FROM sales_summary WHERE category = 'RetryNow' LIMIT 1")
        (window,) = cur.fetchone()
        cur.execute(tamper, (1, Decimal("3.5"), window))
        assert cur.rowcount == 1
    conn.close()
    try:
        code, report = validate_json(stack, capsys)
        assert code == ExitCode.CHECK_FAILED and report["verdict"] == "mismatch"
        (different,) = report["sinks"]["postgres"]["different"]
        assert different["category"] == "RetryNow"
        assert different["actual"]["transaction_count"] == different["expected"]["transaction_count"] + 1
    finally:
        with pg_connect(stack) as conn, conn.cursor() as cur:
            cur.execute(tamper, (-1, Decimal("-3.5"), window))
        conn.close()
    assert_exact(stack, capsys)


# -- hostile records straight to the topic ------------------------------------------------------------

def hostile_records() -> list[tuple[bytes | None, bytes | None]]:
    now = int(time.time() * 1000)

    def tx(**fields) -> dict:
        base = {**transaction(category="Hostile"), "transaction_date": format_event_time(now)}
        return {**base, **fields}

    def raw(value: dict) -> tuple[bytes, bytes]:
        return str(value.get("transaction_id")).encode(), json.dumps(value, ensure_ascii=True).encode()

    records: list[tuple[bytes | None, bytes | None]] = [
        (None, b"this is not JSON"), (None, b""), (None, None), (None, b"null"), (None, b"[1, 2, 3]"),
        (None, b'"a string"'), (None, b"42"), (None, b'{"truncated": '), (None, b'{"total_amount": NaN}'),
    ]
    for text in ("Bo\x00oks", "tab\there", "del\x7f", "c1\x85", "lone\ud800", "\udfff", "x" * 257):
        records.append(raw(tx(product_category=text)))
        records.append(raw(tx(product_brand=text)))
    for fields in ({"transaction_id": None}, {"currency": "BRL\n"}, {"currency": "brl"}, {"currency": "BRLX"},
                   {"product_quantity": 1_000_001}, {"product_quantity": 0}, {"total_amount": 0}):
        records.append(raw(tx(**fields)))
    # Storable and countable, however odd: every sink must hold them as written.
    for fields in ({"product_category": "A|B", "product_brand": "C"}, {"product_category": "A", "product_brand": "B|C"},
                   {"product_category": "😀" * 256}, {"product_brand": "Ünïcödé ✓ 𝄞"}, {"product_quantity": 1_000_000},
                   {"product_category": "x" * 256}, {"payment_method": "'; DROP TABLE sales_summary; --"}):
        records.append(raw(tx(transaction_id=str(uuid.uuid4()), **fields)))
    # The largest amount, many times in one window and key: far beyond DECIMAL(14, 2).
    for _ in range(60):
        records.append(raw(tx(transaction_id=str(uuid.uuid4()), product_category="Max", total_amount=float(MAX_MONEY),
                              product_price=float(MAX_MONEY), product_quantity=1)))
    # Event times: only the canonical form within the tolerance of the append time is taken.
    for date in ("2026-02-30T10:00:00.000Z", format_event_time(now)[:-1], format_event_time(now).replace("T", " "),
                 format_event_time(now - 3_600_000), format_event_time(now + 3_600_000), "garbage",
                 format_event_time(now)[:11] + "24:00:00.000Z", format_event_time(now)[:17] + "60.000Z"):
        records.append(raw(tx(transaction_id=str(uuid.uuid4()), transaction_date=date)))
    return records


def produce_copies_out_of_order(stack) -> None:
    """Two copies of one transaction straight to the topic, the one stated later first: the earliest
    counts, though it is appended second. They are stated 150 ms either side of the moment they are
    sent by a producer already connected, well inside the default tolerance (499 ms), so each keeps
    its stated time; outside it both would take their append times and the first would count.
    They go to partitions 0 and 1, as a writer that ignores the key might: validate's workers split
    the partitions ([0, 2] and [1] on two cores), so they must decide on the two copies together."""
    from confluent_kafka import Producer

    topic = settings_of(stack).kafka.topic
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{TEST_PORTS['kafka']}", "acks": "all"})
    producer.list_topics(topic, timeout=10)  # connected before the clock is read
    now, tid = int(time.time() * 1000), str(uuid.uuid4())
    for partition, stated, category in ((0, now + 150, "Copies stated later"), (1, now - 150, "Copies stated earlier")):
        payload = {**transaction(category=category), "transaction_id": tid, "transaction_date": format_event_time(stated)}
        producer.produce(topic, key=tid.encode(), value=json.dumps(payload).encode(), partition=partition)
    assert producer.flush(30) == 0


def test_hostile_records_in_the_topic_never_stop_the_job_and_are_counted_alike(stack, capsys):
    jid, exceptions = job_exceptions(stack)
    records = hostile_records()
    produce(stack, records)
    produce_copies_out_of_order(stack)
    report = assert_exact(stack, capsys)
    assert report["topic"]["rejected"] >= 9 + 14 + 7
    assert report["sinks"]["rejected_summary"]["matched"] >= 1
    assert job_exceptions(stack) == (jid, exceptions)  # no restart, no failed checkpoint
    assert sink_counts(stack, "Max") == (60, 60)
    with pg_connect(stack) as conn, conn.cursor() as cur:
        cur.execute("SELECT sum(revenue) FROM sales_summary WHERE category = 'Max'")
        assert cur.fetchone()[0] == MAX_MONEY * 60
        cur.execute("SELECT count(*) FROM sales_summary WHERE category IN ('A|B', 'A')")
        assert cur.fetchone()[0] == 2  # two keys a separator would have joined: two rows ...
    conn.close()
    assert sink_counts(stack, "Copies stated earlier") == (1, 1)
    assert sink_counts(stack, "Copies stated later") == (0, 0)
    settings = settings_of(stack)
    url = f"http://127.0.0.1:{settings.ports.elasticsearch}/{settings.elasticsearch.index}/_search"
    _, body = http_json(url, 10, "POST", {"size": 10, "query": {"terms": {"category": ["A|B", "A"]}}})
    assert body["hits"]["total"]["value"] == 2  # ... and two documents
    assert all(len(hit["_id"]) == 64 for hit in body["hits"]["hits"])
    doc_revenue = http_json(url, 10, "POST", {"size": 1, "query": {"term": {"category": "Max"}}})[1]
    assert Decimal(doc_revenue["hits"]["hits"][0]["_source"]["revenue"]) == MAX_MONEY * 60


def test_validate_reads_the_running_jobs_rules_not_todays_settings(stack, capsys, tmp_path):
    changed = tmp_path / "changed.yaml"
    config = yaml.safe_load(stack.read_text())
    config["flink"] = {**config["flink"], "window_seconds": 30, "dedup_minutes": 3}
    changed.write_text(yaml.safe_dump(config))
    code, report = validate_json(changed, capsys, "--wait", "60s")
    assert code == ExitCode.OK, json.dumps(report)[:3000]
    assert report["job"]["window_seconds"] == WINDOW_S and report["job"]["dedup_minutes"] == 10
    assert any(f"window_seconds = {WINDOW_S}" in note and "settings now say 30" in note for note in report["notes"])



def test_a_burst_of_300000_transactions_with_retries_is_counted_exactly_in_both_sinks(stack, capsys):
    """The burst that once lost windows (RocksDB outside managed memory: COUNT(*) = 0 rows, then 330 of
    340 window keys missing): 300,000 transactions written as fast as one client can, with 3,000 retries
    of transactions written just before, on every partition."""
    from confluent_kafka import Producer

    count, category, run = 300_000, "Burst", uuid.uuid4().hex[:8]
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{TEST_PORTS['kafka']}", "acks": "all", "linger.ms": 20,
                         "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000})
    topic = settings_of(stack).kafka.topic
    written: list[bytes] = []
    for i in range(count):
        value = json.dumps({
            "transaction_id": f"burst-{run}-{i}", "product_id": 7, "product_name": "thing",
            "product_category": category, "product_price": 1.25, "product_quantity": 1 + i % 3,
            "product_brand": f"B{i % 7}", "total_amount": round(1.25 * (1 + i % 3), 2), "currency": "BRL",
            "customer_id": 3, "transaction_date": format_event_time(int(time.time() * 1000)),
            "payment_method": "Pix"}).encode()
        written.append(value)
        for record in (value, written[i - 50]) if i % 100 == 99 else (value,):  # a retry of one 50 before
            while True:
                try:
                    producer.produce(topic, value=record)
                    break
                except BufferError:
                    producer.poll(0.05)
    assert producer.flush(120) == 0
    report = assert_exact(stack, capsys, wait="300s")
    assert sink_counts(stack, category) == (count, count)
    with pg_connect(stack) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(sum(duplicate_count), 0) FROM rejected_summary")
        assert int(cur.fetchone()[0]) == report["topic"]["duplicates_dropped"] >= count // 100
    conn.close()


def test_the_api_answers_429_while_the_job_is_behind_and_every_2xx_is_counted(stack, api, capsys):
    """Admission control against a real job that falls behind: its TaskManager frozen (SIGSTOP), so its
    watermark stops while the wall clock goes on. The API answers 429 with Retry-After once the job is
    more than producer.max_lag_seconds behind, and 201 again once it caught up; what got a 201 is
    counted exactly once in both sinks."""
    settings = settings_of(stack)
    rest = f"http://127.0.0.1:{TEST_PORTS['flink_rest']}"
    delay_ms = settings.flink.watermark_delay_seconds * 1000
    wait_for(lambda: (lag := job_lag(rest, StackNames.of(settings).job_name, delay_ms)).seconds is not None
             and lag.seconds < MAX_LAG_S, 120, what="the job within the lag bound before the test")
    taskmanager = LocalRuntime(settings).supervisor.record("flink-taskmanager").pid
    accepted, refusal = 0, None
    os.kill(taskmanager, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 60
        while refusal is None and time.monotonic() < deadline:
            status, headers, body = post_json(f"{api}/transaction", transaction(category="Admission"))
            if status == 429:
                refusal = (headers, body)
            else:
                assert status == 201, (status, body)
                accepted += 1
                time.sleep(0.2)
        assert refusal is not None, "no 429 within 60 s of freezing the TaskManager"
        headers, body = refusal
        retry_after = {name.lower(): value for name, value in headers.items()}["retry-after"]
        assert int(retry_after) >= 1 and "behind" in body["detail"]
        assert accepted >= 1
    finally:
        os.kill(taskmanager, signal.SIGCONT)
    wait_for(lambda: post_json(f"{api}/transaction", transaction(category="Admission"))[0] == 201, 120,
             what="a 201 once the job caught up")
    assert_exact(stack, capsys)
    assert sink_counts(stack, "Admission") == (accepted + 1, accepted + 1)


def test_a_second_stack_with_other_ports_runs_beside_this_one(stack, api, capsys):
    """`--stack NAME` with other ports: its own processes, data and verdict; the first stack untouched."""
    other_ports = {name: port + 1000 for name, port in TEST_PORTS.items()}
    config = yaml.safe_load(stack.read_text())
    second = stack.parent / "second.yaml"
    second.write_text(yaml.safe_dump({**config, "stack_name": "it-second", "ports": other_ports}))
    try:
        assert cli(second, "up", "--runtime", "local") == ExitCode.OK
        first_runtime, second_runtime = LocalRuntime(settings_of(stack)), LocalRuntime(settings_of(second))
        assert first_runtime.supervisor.record("kafka").pid != second_runtime.supervisor.record("kafka").pid
        assert post_json(f"http://127.0.0.1:{other_ports['producer']}/transaction",
                         transaction(category="SecondStack"))[0] == 201
        assert post_json(f"{api}/transaction", transaction(category="FirstStack"))[0] == 201
        code, report = validate_json(second, capsys, "--wait", "60s")
        assert code == ExitCode.OK and report["topic"]["transactions"] == 1, report
        assert_exact(stack, capsys)
        assert sink_counts(stack, "SecondStack") == (0, 0)
    finally:
        assert cli(second, "down", "--purge") == ExitCode.OK
    assert cli(stack, "status") == ExitCode.OK
