"""Faults and bad input on a running local stack, each ending with `validate` exact."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest
from kafka import KafkaProducer

from streamctl import lifecycle
from streamctl.exit_codes import ExitCode
from streamctl.flink.cluster import FlinkCluster
from streamctl.runtimes.local.runtime import LocalRuntime
from tests.integration.stackutil import (
    TEST_PORTS, Poster, assert_exact, cli, settings_of, transaction, wait_for,
)
from tests.integration.stackutil import completed_checkpoints, restored_from, topic_end_offset, topic_records

pytestmark = [pytest.mark.integration, pytest.mark.destructive]


@pytest.fixture(scope="module")
def stack(shared_stack):
    return shared_stack


@pytest.fixture(scope="module")
def api(stack):
    return f"http://127.0.0.1:{TEST_PORTS['producer']}"


def test_kill_9_taskmanager_during_load_then_exact(stack, api, capsys):
    runtime = LocalRuntime(settings_of(stack))
    flink = FlinkCluster(runtime.context())
    before = flink.taskmanager_ids()
    assert len(before) == 1
    with Poster(api) as poster:
        poster.wait_for_more(50)
        os.kill(runtime.supervisor.record("flink-taskmanager").pid, signal.SIGKILL)
        poster.wait_for_more(50)  # the API goes on accepting into Kafka while the job has no TaskManager
    assert poster.statuses.get(201, 0) >= 100
    assert cli(stack, "up") == ExitCode.OK  # brings the TaskManager back; the job restores its checkpoint
    # Ready means the new TaskManager registered, not that the JobManager still lists the dead one.
    assert flink.taskmanager_ids() - before, flink.taskmanager_ids()
    assert_exact(stack, capsys, "120s")


def test_the_watchdog_restarts_killed_services_without_up_and_status_counts_it(stack, api, capsys):
    """The local runtime's restart policy: nobody runs `up`; the services come back by themselves."""
    runtime = LocalRuntime(settings_of(stack))
    killed = {}
    capsys.readouterr()

    def restarts() -> dict[str, int]:
        return {s["name"]: s["restarts"] for s in json.loads(_last_json(capsys, stack))["services"]}

    # The stack is shared: earlier tests may have restarted services. Count from here.
    before = restarts()
    with Poster(api, threads=2) as poster:
        poster.wait_for_more(30)
        for name in ("flink-taskmanager", "indexer"):
            killed[name] = runtime.supervisor.record(name).pid
            os.kill(killed[name], signal.SIGKILL)
        wait_for(lambda: all((r := runtime.supervisor.record(n)) and r.pid != pid for n, pid in killed.items()),
                 60, what="the watchdog to start the killed services again")
    capsys.readouterr()
    wait_for(lambda: cli(stack, "status", "--json") == ExitCode.OK, 90, interval_s=2, what="a healthy stack")

    # The watchdog counts once its `up` returns, which waits for every task of the job to run: status
    # may call the job RUNNING a moment earlier.
    wait_for(lambda: all(restarts()[name] > before[name] for name in killed), 30, interval_s=1,
             what="status to count both restarts")
    assert restarts()["kafka"] == before["kafka"]
    assert_exact(stack, capsys, "120s")


def test_after_a_crash_of_the_whole_flink_cluster_the_job_resumes_from_its_newest_checkpoint(stack, api, capsys):
    runtime = LocalRuntime(settings_of(stack))
    with Poster(api, threads=2) as poster:
        taken = completed_checkpoints(stack)  # a checkpoint of this load to resume from (every 5 s here)
        wait_for(lambda: completed_checkpoints(stack) > taken, 60, what="a checkpoint during the load")
        for name in ("flink-jobmanager", "flink-taskmanager"):
            os.kill(runtime.supervisor.record(name).pid, signal.SIGKILL)
        poster.wait_for_more(30)  # accepted into Kafka while no Flink process runs
    assert cli(stack, "up") == ExitCode.OK  # (or the watchdog, whichever comes first)
    restored = restored_from(stack)
    # a retained checkpoint (Flink reports any `-s` restore as a savepoint restore: the path tells)
    path = restored.get("external_path", "")
    assert "/checkpoints/" in path and "/chk-" in path, f"the job did not resume from a checkpoint: {restored}"
    assert_exact(stack, capsys, "120s")


def test_an_aggregate_elasticsearch_refuses_goes_to_the_dead_letters_and_indexing_goes_on(stack, capsys):
    settings = settings_of(stack)
    dead_letters = settings.stack_dir / "indexer" / "dead-letters.ndjson"
    before = dead_letters.read_text().count("\n") if dead_letters.exists() else 0
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{settings.ports.kafka}")
    key = {"window_start": "2026-11-25T10:00:00", "category": "x", "brand": "y", "payment_method": "z",
           "currency": "BRL"}
    producer.send(settings.kafka.aggregates_topic, key=json.dumps(key).encode(),
                  value=json.dumps({**key, "window_end": "not a date", "transaction_count": 1, "items_sold": 1,
                                    "revenue": 1, "avg_ticket": 1}).encode())
    producer.flush()
    producer.close()
    wait_for(lambda: dead_letters.exists() and dead_letters.read_text().count("\n") > before, 30,
             what="the refused document in the dead letters")
    assert "not a date" in dead_letters.read_text().splitlines()[-1] or "window_end" in dead_letters.read_text()


def _last_json(capsys, stack) -> str:
    capsys.readouterr()
    cli(stack, "status", "--json")
    return capsys.readouterr().out


def test_kill_9_kafka_for_10_s_during_load_every_2xx_counted_once(stack, api, capsys):
    runtime = LocalRuntime(settings_of(stack))
    with Poster(api, retries=True) as poster:
        poster.wait_for_more(50)
        os.kill(runtime.supervisor.record("kafka").pid, signal.SIGKILL)
        time.sleep(10)  # the outage itself
        assert cli(stack, "up") == ExitCode.OK
        poster.wait_for_more(50)  # accepted again
    assert poster.statuses.get(503, 0) > 0  # refused while the broker was away, never a false 2xx
    assert not any(500 <= code < 600 and code != 503 for code in poster.statuses)
    in_topic = [r.get("transaction_id") for r in topic_records(stack)]
    assert poster.acknowledged <= set(in_topic)  # every acknowledged transaction is in the topic ...
    report = assert_exact(stack, capsys, "120s")  # ... and each transaction counted exactly once,
    assert poster.retried > 0  # retries included: the same id again after a 503 or a lost answer
    in_topic_ids = [i for i in in_topic if i is not None]
    assert report["topic"]["transactions"] - report["topic"]["duplicates_dropped"] == len(set(in_topic_ids))


def test_restart_postgres_then_elasticsearch_during_load_sinks_catch_up(stack, api, capsys):
    runtime = LocalRuntime(settings_of(stack))
    with Poster(api, threads=2):
        for name in ("postgres", "elasticsearch"):
            runtime.supervisor.stop(name, signal.SIGINT if name == "postgres" else signal.SIGTERM)
            time.sleep(3)
            assert cli(stack, "up") == ExitCode.OK
    assert_exact(stack, capsys, "150s")


def test_killed_indexer_resumes_from_committed_offsets(stack, api, capsys):
    runtime = LocalRuntime(settings_of(stack))
    aggregates = settings_of(stack).kafka.aggregates_topic
    with Poster(api, threads=2) as poster:
        poster.wait_for_more(30)
        os.kill(runtime.supervisor.record("indexer").pid, signal.SIGKILL)
        written = topic_end_offset(stack, aggregates)
        # windows close meanwhile; their aggregates wait in Kafka for the indexer
        wait_for(lambda: topic_end_offset(stack, aggregates) > written, 60, what="a window's aggregates in Kafka")
    assert cli(stack, "up") == ExitCode.OK
    assert_exact(stack, capsys, "90s")


def test_poison_records_in_the_topic_are_counted_as_rejects_and_the_job_keeps_running(stack, capsys):
    settings = settings_of(stack)
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{settings.ports.kafka}")
    valid = {k: v for k, v in transaction().items()}
    poison = [
        b"this is not JSON",
        b"[1, 2, 3]",
        json.dumps({"product_category": "Books"}).encode(),  # missing fields
        json.dumps({**valid, "product_quantity": "many"}).encode(),  # wrong type
        json.dumps({**valid, "total_amount": None}).encode(),
        json.dumps({**valid, "product_name": "x" * 1_000_000}).encode(),  # a 1 MB string (still countable)
    ]
    # Off-contract but readable: Flink's JSON format takes these, and validate must read them alike.
    def variant(**fields) -> bytes:
        return json.dumps({**valid, "transaction_id": str(uuid.uuid4()), **fields}).encode()

    lenient = [
        variant(product_quantity="3"), variant(product_quantity=3.7), variant(total_amount="12.345"),
        variant(total_amount=10.005), variant(product_brand=7), variant(product_brand={"a": [1, "x"]}),
        variant(product_brand=True), variant(heartbeat="TRUE"), variant(heartbeat=1),
        variant(product_quantity=2**40), variant(total_amount=1e15),  # unconvertible: rejects
        variant(product_brand="LITERAL").replace(b'"LITERAL"', b"1e2"),
        variant(product_brand="LITERAL").replace(b'"LITERAL"', b"5.10"),
        variant(total_amount=1.0).replace(b'"total_amount": 1.0', b'"total_amount": 0.12499999999999999999'),
    ]
    poison += lenient
    for value in poison:
        producer.send(settings.kafka.topic, value=value)
    producer.flush()
    producer.close()
    report = assert_exact(stack, capsys, "90s")
    assert report["topic"]["rejected"] >= 4 + 2  # the unconvertible lenient ones too
    assert report["sinks"]["rejected_summary"]["exact"] and report["sinks"]["rejected_summary"]["matched"] >= 1
    runtime = LocalRuntime(settings)
    assert lifecycle.status(runtime).job_state == "RUNNING"
