"""Helpers for tests that run a real stack: a private state directory and ports, and HTTP/SQL access."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg2
import yaml
from kafka import KafkaConsumer, TopicPartition

from streamctl.cli import run
from streamctl.config import Settings, load_settings
from streamctl.endpoints import Endpoints
from streamctl.secrets import Secrets
from streamctl.waits import http_json

# Ports of their own, so a test stack never collides with a developer's running stack.
TEST_PORTS = {"kafka": 29092, "kafka_controller": 29093, "flink_rest": 28081, "flink_rpc": 26123,
              "postgres": 25432, "elasticsearch": 29200, "elasticsearch_transport": 29300, "producer": 25000,
              "kibana": 25601, "kafka_ui": 28080, "ui": 28090}

# The single-node local stack shared by the modules that need only a healthy default stack (conftest.py).
# Windows of 5 s: every wait for the last window to close (validate --wait) is that much shorter.
SHARED_STACK_NAME = "it-local"
SHARED_WINDOW_S = 5


def make_stack_config(name: str, window_seconds: int = 10, **extra) -> Path:
    # Under /tmp with mode 755: as root, PostgreSQL and Elasticsearch run as an account that must reach it.
    state = Path(tempfile.mkdtemp(prefix=f"streamctl-{name}-", dir="/tmp"))
    state.chmod(0o755)
    config = {
        "stack_name": name,
        "state_dir": str(state),
        "ports": TEST_PORTS,
        "flink": {"window_seconds": window_seconds, "checkpoint_interval_seconds": 5},
        "kafka": {"partitions": 3},
        **extra,
    }
    path = state / "streamctl.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli(config: Path, *args: str) -> int:
    return run(["--config", str(config), *args])


@contextlib.contextmanager
def running_stack(name: str, window_seconds: int = 10, **extra):
    """A whole local stack for a test module, always taken down (with its data) at the end."""
    config = make_stack_config(name, window_seconds=window_seconds, **extra)
    try:
        assert cli(config, "up", "--runtime", "local") == 0
        yield config
    finally:
        cli(config, "down", "--purge")
        shutil.rmtree(config.parent, ignore_errors=True)


def validate_json(config: Path, capsys, *args: str) -> tuple[int, dict]:
    """`streamctl validate --json` in-process: its exit status and its report."""
    capsys.readouterr()
    code = cli(config, "validate", "--json", *args)
    return code, json.loads(capsys.readouterr().out)


def assert_exact(config: Path, capsys, wait: str = "90s") -> dict:
    """validate says EXACT: every window judged, all three sinks compared, nothing pending."""
    from streamctl.exit_codes import ExitCode

    code, report = validate_json(config, capsys, "--wait", wait)
    assert code == ExitCode.OK, json.dumps(report)[:4000]
    assert report["verdict"] == "exact" and report["pending_windows"] == [] and report["inconclusive"] == []
    assert set(report["sinks"]) == {"postgres", "elasticsearch", "rejected_summary"}
    return report


def live_view_snapshot(config: Path) -> dict:
    """The figures the stack's live view (started by `up`, on any runtime) shows, from its JSON."""
    settings = settings_of(config)
    status, body = get(f"http://127.0.0.1:{settings.ports.ui}/api/snapshot")
    assert status == 200, f"the live view did not answer on port {settings.ports.ui}: {status}"
    return json.loads(body)


def assert_live_view_shows_the_exact_stack(config: Path) -> None:
    """After a validate that said exact: the live view shows the running job, windows and the verdict."""
    snapshot = live_view_snapshot(config)
    assert snapshot["job"]["state"] == "RUNNING", snapshot["problems"]
    assert snapshot["windows"]["totals"]["transactions"] > 0 and snapshot["kafka"], snapshot["problems"]
    assert snapshot["validation"]["latest"]["verdict"] == "exact"


def settings_of(config: Path) -> Settings:
    return load_settings(config_file=config, env={})


def post_json(url: str, payload, content_type: str = "application/json") -> tuple[int, dict, dict]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, dict(exc.headers), json.loads(body) if body.startswith(b"{") else {}


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def transaction(category="Books", brand="Nike", payment="Pix", price=10.0, quantity=1, currency="BRL") -> dict:
    return {
        "transaction_id": str(uuid.uuid4()), "product_id": 7, "product_name": "thing",
        "product_category": category, "product_price": price, "product_quantity": quantity,
        "product_brand": brand, "total_amount": price * quantity, "currency": currency, "customer_id": 3,
        "transaction_date": "now", "payment_method": payment,
    }


def wait_for(predicate, timeout_s: float, interval_s: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last value: {last!r}")


def pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat[stat.rindex(")") + 2] != "Z":
                alive.append(pid)
        except (ProcessLookupError, FileNotFoundError):
            continue
    return alive


class Poster:
    """Posts transactions from a few threads and remembers which ids got a 2xx. With retries, it is a
    well-behaved client: after a 503, a 5xx or no answer it posts the same transaction again."""

    def __init__(self, api: str, threads: int = 4, retries: bool = False):
        self.api, self.threads, self.retries = api, threads, retries
        self.acknowledged: set[str] = set()
        self.retried = 0
        self.statuses: dict[int, int] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.workers = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        payload = None
        while not self.stop.is_set():
            if payload is None:
                payload = transaction(price=12.34, quantity=2)
            try:
                status = post_json(f"{self.api}/transaction", payload)[0]
            except OSError:
                status = 0
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if 200 <= status < 300:
                    self.acknowledged.add(payload["transaction_id"])
                retry = self.retries and not 200 <= status < 500
                self.retried += retry
            payload = payload if retry else None
            time.sleep(0.01)

    def acknowledged_count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def wait_for_more(self, count: int, timeout_s: float = 60) -> None:
        """Until `count` more transactions than now got a 2xx: load that flowed, not seconds that passed."""
        target = self.acknowledged_count() + count
        wait_for(lambda: self.acknowledged_count() >= target, timeout_s, interval_s=0.05,
                 what=f"{count} more acknowledged transactions (the API or the poster stalled)")

    def __enter__(self):
        for w in self.workers:
            w.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for w in self.workers:
            w.join()


# -- reading a test stack directly: PostgreSQL, the topic, the JobManager ---------------------------

def pg_connect(config):
    settings = settings_of(config)
    password = Secrets.load(settings.stack_dir).postgres_password
    return psycopg2.connect(host="127.0.0.1", port=settings.ports.postgres, user=settings.postgres.user,
                            password=password, dbname=settings.postgres.database)


def topic_records(config) -> list[dict]:
    settings = settings_of(config)
    consumer = KafkaConsumer(**Endpoints.of(settings).kafka.kafka_python(), enable_auto_commit=False)
    partitions = [TopicPartition(settings.kafka.topic, p) for p in consumer.partitions_for_topic(settings.kafka.topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    values = []
    while any(consumer.position(tp) < end[tp] for tp in partitions):
        for batch in consumer.poll(timeout_ms=1000).values():
            values.extend(json.loads(r.value) for r in batch)
    consumer.close()
    return values


def restored_from(stack) -> dict:
    """What the running job was restored from, as Flink's REST API reports it."""
    rest = f"http://127.0.0.1:{TEST_PORTS['flink_rest']}"
    status, body = get(f"{rest}/jobs/overview")
    (job,) = [j for j in json.loads(body)["jobs"] if j["state"] == "RUNNING"]
    status, body = get(f"{rest}/jobs/{job['jid']}/checkpoints")
    return json.loads(body)["latest"]["restored"] or {}


def job_exceptions(stack) -> tuple[str, int]:
    """The running job's id and how many exceptions its history holds (a restart adds one)."""
    rest = f"http://127.0.0.1:{TEST_PORTS['flink_rest']}"
    _, overview = http_json(f"{rest}/jobs/overview", 5)
    (job,) = [j for j in overview["jobs"] if j["state"] == "RUNNING"]
    _, exceptions = http_json(f"{rest}/jobs/{job['jid']}/exceptions", 5)
    return job["jid"], len(exceptions.get("exceptionHistory", {}).get("entries", []))


def completed_checkpoints(stack) -> int:
    """Checkpoints the running job completed (0 when no job runs)."""
    rest = f"http://127.0.0.1:{settings_of(stack).ports.flink_rest}"
    _, overview = http_json(f"{rest}/jobs/overview", 5)
    running = [j["jid"] for j in overview["jobs"] if j["state"] == "RUNNING"]
    if not running:
        return 0
    _, checkpoints = http_json(f"{rest}/jobs/{running[0]}/checkpoints", 5)
    return int((checkpoints.get("counts") or {}).get("completed", 0))


def topic_end_offset(config, topic: str) -> int:
    """The sum of a topic's end offsets: how many records were ever written to it."""
    from streamctl.kafka_info import end_offsets

    return sum(end_offsets(Endpoints.of(settings_of(config)).kafka, topic).values())
