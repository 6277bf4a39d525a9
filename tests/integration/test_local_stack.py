"""The whole pipeline on the local runtime, through the CLI, on real Kafka, Flink, PostgreSQL and
Elasticsearch: up -> healthy -> transactions in both sinks, exactly -> bad input refused -> Kafka down
gives 503 -> down leaves nothing -> up keeps data -> down --purge."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import urllib.parse
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from streamctl import provision
from streamctl.exit_codes import ExitCode
from streamctl.pipeline.contract import parse_event_time, validate_transaction
from streamctl.pipeline.indexer import document_id
from streamctl.pipeline.windows import aggregate
from streamctl.machine.preflight import port_free
from streamctl.runtimes.local.runtime import LocalRuntime
from streamctl.machine.supervisor import group_pids
from streamctl.services import services_only
from tests.integration.browser import Page, dump_dom, png_distinct_bytes, screenshot
from tests.integration.stackutil import (
    SHARED_WINDOW_S,
    TEST_PORTS,
    cli,
    get,
    pids_alive,
    post_json,
    settings_of,
    transaction,
    wait_for,
)
from tests.payloads import reference_payload
from tests.integration.stackutil import pg_connect, topic_records, restored_from

pytestmark = pytest.mark.integration
WINDOW_S = SHARED_WINDOW_S


@pytest.fixture(scope="module")
def stack(shared_stack):
    return shared_stack


@pytest.fixture(scope="module")
def api(stack):
    return f"http://127.0.0.1:{TEST_PORTS['producer']}"


def pg_windows(config, categories: set[str]) -> dict[tuple, tuple]:
    with pg_connect(config) as conn, conn.cursor() as cur:
        cur.execute("SELECT window_start, window_end, category, brand, payment_method, currency, transaction_count,"
                    " items_sold, revenue, avg_ticket FROM sales_summary WHERE category = ANY(%s)", (list(categories),))
        rows = cur.fetchall()
    conn.close()
    return {(int(r[0].timestamp() * 1000), r[2], r[3], r[4], r[5]): (int((r[1] - r[0]).total_seconds()), r[6], r[7],
                                                                     r[8], r[9]) for r in rows}


def es_windows(config, categories: set[str]) -> dict[tuple, tuple]:
    settings = settings_of(config)
    query = json.dumps({"size": 10000, "query": {"terms": {"category": sorted(categories)}}}).encode()
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{settings.ports.elasticsearch}/"
                                     f"{settings.elasticsearch.index}/_search", data=query,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        hits = json.loads(response.read())["hits"]["hits"]
    result = {}
    for hit in hits:
        d = hit["_source"]
        start, end = parse_event_time(d["window_start"].replace("Z", ".000Z")), parse_event_time(
            d["window_end"].replace("Z", ".000Z"))
        key = (start, d["category"], d["brand"], d["payment_method"], d["currency"])
        assert hit["_id"] == document_id(d)  # deterministic: a replay overwrites the same document
        result[key] = ((end - start) // 1000, d["transaction_count"], d["items_sold"], Decimal(d["revenue"]),
                       Decimal(d["avg_ticket"]))
    return result


@pytest.mark.smoke
def test_status_reports_every_service_healthy(stack, capsys):
    code = cli(stack, "status", "--json")
    report = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK
    assert report["healthy"] is True and report["job_state"] == "RUNNING"
    assert {s["name"] for s in report["services"]} == {s.name for s in services_only()}
    assert all(s["healthy"] and s["pid"] for s in report["services"])


LOOPBACK_V4 = "0100007F"
LOOPBACK_V6 = {"00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def listening_sockets() -> dict[str, str]:
    """socket inode -> local address (hex, as /proc/net shows it) of every listening TCP socket."""
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                sockets[fields[9]] = fields[1]
    return sockets


def test_every_listening_socket_of_the_stack_is_on_loopback(stack):
    runtime = LocalRuntime(settings_of(stack))
    listening = listening_sockets()
    seen, exposed = 0, []
    for spec in services_only():
        record = runtime.supervisor.record(spec.name)
        for pid in [record.pid, *group_pids(record.pid)]:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                inode = target[len("socket:["):-1] if target.startswith("socket:[") else None
                if inode in listening:
                    seen += 1
                    address = listening[inode].split(":")[0]
                    if address != LOOPBACK_V4 and address not in LOOPBACK_V6:
                        exposed.append(f"{spec.name} pid {pid}: {listening[inode]}")
    assert seen >= 8
    assert exposed == []


def test_secrets_are_private(stack):
    settings = settings_of(stack)
    assert (settings.stack_dir / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert (settings.stack_dir / "flink" / "job.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.smoke
def test_transactions_over_three_windows_land_exactly_in_both_sinks(stack, api):
    tag = uuid.uuid4().hex[:6]
    categories = [f"Electronics-{tag}", f"Books-{tag}", f"Toys-{tag}"]
    brands, payments = ["Samsung", "Apple", "Nike"], ["Credit Card", "Pix", "PayPal"]
    accepted: list[tuple[dict, int]] = []
    windows_seen: set[int] = set()
    i = 0
    while len(windows_seen) < 3:
        single = [transaction(categories[(i + k) % 3], brands[(i + k) % 3], payments[(i + 2 * k) % 3],
                              price=round(10 + 7.37 * (i + k), 2), quantity=1 + (i + k) % 5) for k in range(4)]
        for payload in single:
            status, _, body = post_json(f"{api}/transaction", payload)
            assert status == 201, body
            record, errors = validate_transaction(payload, body["transaction_date"])
            accepted.append((record, parse_event_time(body["transaction_date"])))  # appended within ms of it
            windows_seen.add(parse_event_time(body["transaction_date"]) // (WINDOW_S * 1000))
        batch = [transaction(categories[k % 3], brands[k % 3], payments[k % 3], price=99.99, quantity=3)
                 for k in range(5)]
        status, _, body = post_json(f"{api}/transactions", batch)
        assert status == 200 and body["accepted"] == 5, body
        for payload in batch:
            record, _ = validate_transaction(payload, body["transaction_date"])
            accepted.append((record, parse_event_time(body["transaction_date"])))
        windows_seen.add(parse_event_time(body["transaction_date"]) // (WINDOW_S * 1000))
        i += 1
        time.sleep(1.5)

    expected = {(k.window_start_ms, k.category, k.brand, k.payment_method, k.currency):
                (WINDOW_S, f.transaction_count, f.items_sold, f.revenue, f.avg_ticket)
                for k, f in aggregate(accepted, WINDOW_S * 1000).items()}
    assert len({k[0] for k in expected}) >= 3 and len(expected) >= 9
    wanted = set(categories)
    # Windows close a watermark delay after their end, driven by heartbeats even with no traffic.
    wait_for(lambda: pg_windows(stack, wanted) == expected, 60, what="PostgreSQL rows to equal the expected windows")
    wait_for(lambda: es_windows(stack, wanted) == expected, 30, what="Elasticsearch documents to equal them")


def test_reference_payload_is_accepted(api):
    status, _, body = post_json(f"{api}/transaction", reference_payload())
    assert status == 201 and body["status"] == "accepted"
    assert body["transaction_date"].endswith("Z") and len(body["transaction_date"]) == 24


INVALID = [("transaction_id", "nope"), ("product_id", 0), ("product_name", ""), ("product_category", 5),
           ("product_price", -1), ("product_quantity", 0), ("product_brand", None), ("total_amount", 1.0),
           ("currency", "R$"), ("customer_id", "x"), ("payment_method", "")]


@pytest.mark.smoke
def test_invalid_payloads_get_400_naming_the_field_and_nothing_reaches_kafka(stack, api):
    refused_ids = set()
    for field, value in INVALID:
        payload = transaction()
        payload[field] = value
        refused_ids.add(payload["transaction_id"])
        status, _, body = post_json(f"{api}/transaction", payload)
        assert status == 400 and set(body["fields"]) == {field}, (field, body)
    assert post_json(f"{api}/transaction", b"{oops")[0] == 400
    wrong_type = transaction()
    refused_ids.add(wrong_type["transaction_id"])
    assert post_json(f"{api}/transaction", wrong_type, "text/plain")[0] == 415
    huge = transaction() | {"product_name": "x" * (5 * 1024 * 1024)}
    refused_ids.add(huge["transaction_id"])
    assert post_json(f"{api}/transaction", huge)[0] == 413
    seen = {r.get("transaction_id") for r in topic_records(stack)}
    assert not refused_ids & seen


def test_slow_and_half_sent_requests_do_not_exhaust_the_workers(api):
    """300 clients that never finish their headers or their body (slowloris): the API keeps answering
    everyone else at once, and drops the stalled header readers itself (its 10 s header timeout)."""
    headers_only = b"POST /transaction HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    half_body = (b"POST /transaction HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 400\r\n\r\n{\"transaction_id\": ")
    stalled: list[tuple[socket.socket, bool]] = []
    try:
        for n in range(300):
            conn = socket.create_connection(("127.0.0.1", TEST_PORTS["producer"]), timeout=5)
            conn.sendall(headers_only if n % 2 else half_body)
            stalled.append((conn, n % 2 == 1))
        for _ in range(20):
            started = time.monotonic()
            assert post_json(f"{api}/transaction", transaction())[0] == 201
            assert time.monotonic() - started < 1.0, "a stalled client delayed a normal request"
        time.sleep(12)
        closed = 0
        for conn, headers_stalled in stalled:
            if not headers_stalled:
                continue
            conn.settimeout(3)
            try:
                conn.recv(4096)  # EOF or an error response: either way the server stopped waiting for it
                closed += 1
            except (ConnectionResetError, BrokenPipeError):
                closed += 1
            except socket.timeout:
                pass
        assert closed == 150, f"only {closed} of 150 stalled header readers were dropped by the server"
        assert post_json(f"{api}/transaction", transaction())[0] == 201
    finally:
        for conn, _ in stalled:
            conn.close()


def test_metrics_are_prometheus_text(api):
    status, body = get(f"{api}/metrics")
    text = body.decode()
    assert status == 200
    accepted = int(next(line for line in text.splitlines()
                        if line.startswith("streamctl_producer_records_accepted_total ")).split()[1])
    assert accepted > 0
    assert 'streamctl_producer_records_rejected_total{reason="invalid"}' in text


def test_load_then_validate_is_exact(stack, capsys):
    code = cli(stack, "load", "--users", "20", "--spawn-rate", "20", "--duration", "8s", "--profile", "max")
    out = capsys.readouterr().out
    assert code == ExitCode.OK, out
    summary = json.loads(next(settings_of(stack).stack_dir.glob("load/*/summary.json")).read_text())
    assert summary["final"]["requests"] > 100 and summary["final"]["failures"] == 0
    assert (settings_of(stack).stack_dir / "load").exists()
    code = cli(stack, "validate", "--wait", "60s", "--json")
    report = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK, report
    assert report["verdict"] == "exact" and report["pending_windows"] == []
    assert report["sinks"]["postgres"]["matched"] > 0
    assert report["sinks"]["postgres"]["matched"] == report["sinks"]["elasticsearch"]["matched"]
    posts = next(e["requests"] for e in summary["per_endpoint"] if e["name"] == "POST /transaction")
    assert report["topic"]["transactions"] >= posts > 0
    assert any("Kibana" in note for note in report["notes"])


def test_demo_runs_the_whole_story_on_the_running_stack(stack, capsys):
    code = cli(stack, "demo", "--users", "10", "--duration", "6s")
    out = capsys.readouterr().out
    assert code == ExitCode.OK, out
    assert "already running" in out  # up is idempotent: nothing started twice
    assert "EXACT" in out and "where to look" in out and "sales_summary" in out
    code = cli(stack, "validate", "--json")
    assert code == ExitCode.OK and json.loads(capsys.readouterr().out)["verdict"] == "exact"


def test_html_report_renders_the_live_views_sections_in_chromium(stack, tmp_path, capsys):
    page = tmp_path / "report.html"
    assert cli(stack, "report", "--html", str(page)) == ExitCode.OK
    text = page.read_text()
    assert "<script" not in text and "http://" not in text and "https://" not in text  # self-contained
    dom = dump_dom(page.as_uri())
    for element_id, title in (("revenue-by-category", "Revenue per window by category"),
                              ("transactions-by-payment-method", "Transactions per window by payment method"),
                              ("kafka", "consumer lag"), ("job", "Flink job"), ("freshness-section", "Freshness"),
                              ("validation-section", "Exactness")):
        assert f'id="{element_id}"' in dom and title in dom
    assert "Electronics" in dom and "Pix" in dom and "RUNNING" in dom
    assert dom.count('class="bar"') >= 5
    assert 'id="bench-history"' in dom and "No benchmark has run on this stack" in dom
    shot = screenshot(page.as_uri(), tmp_path / "report.png")
    assert png_distinct_bytes(shot) > 20


LIVE_VIEW = f"http://127.0.0.1:{TEST_PORTS['ui']}/"
WINDOWS_SHOWN = "Number(document.querySelector('#revenue-by-category')?.dataset.windows || 0)"
LAST_WINDOW = "(document.querySelector('#revenue-by-category')?.dataset.lastWindow || '')"
VERDICT = "document.querySelector('#validation')?.dataset.verdict"
RAN_AT = "(document.querySelector('#validation')?.dataset.ranAt || '')"


def artifacts_dir() -> Path:
    """Where tests leave what a person should look at (screenshots): printed, and kept after the run."""
    path = Path(os.environ.get("STREAMCTL_TEST_ARTIFACTS", "test-artifacts")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_live_view_moves_with_the_pipeline_and_turns_to_mismatch_on_a_tampered_row(stack, api, capsys,
                                                                                   record_property):
    assert cli(stack, "ui") == ExitCode.OK  # `up` started it: `ui` names its address
    assert LIVE_VIEW in capsys.readouterr().out
    with Page() as browser:
        browser.open(LIVE_VIEW)
        browser.evaluate("window.sameDocument = true")  # gone if the page reloads
        for _ in range(20):
            assert post_json(f"{api}/transaction", transaction(category="Electronics"))[0] == 201
        browser.wait_for(WINDOWS_SHOWN, 60)
        windows, last = browser.evaluate(f"[{WINDOWS_SHOWN}, {LAST_WINDOW}]")  # one state of the page
        assert browser.evaluate("document.querySelectorAll('#revenue-by-category rect.bar').length") >= 1
        assert browser.wait_for("document.querySelector('#ingest-rates')?.dataset.points >= 2", 30)
        assert browser.evaluate("document.querySelector('#job-state').textContent") == "RUNNING"
        assert browser.wait_for("document.querySelectorAll('#freshness tbody tr').length", 60)
        assert "streamctl-job-it-local" in browser.evaluate("document.querySelector('#kafka').textContent")

        # A window that closes after the page loaded appears in it, without a reload.
        time.sleep(WINDOW_S - time.time() % WINDOW_S + 0.5)
        assert post_json(f"{api}/transaction", transaction(category="Electronics"))[0] == 201
        browser.wait_for(f"{LAST_WINDOW} > {json.dumps(last)}", 60)
        assert browser.evaluate(WINDOWS_SHOWN) >= min(windows + 1, 30), (windows, last)
        assert browser.evaluate("window.sameDocument") is True

        # The button runs validate; a tampered row turns the verdict to mismatch.
        ran_at = browser.evaluate(RAN_AT)
        browser.evaluate("document.querySelector('#run-validate').click()")
        browser.wait_for(f"{RAN_AT} !== {json.dumps(ran_at)}", 120)
        assert browser.evaluate(VERDICT) in ("exact", "inconclusive")  # windows may still be open
        ran_at = browser.evaluate(RAN_AT)
        with pg_connect(stack) as conn, conn.cursor() as cur:
            cur.execute("UPDATE sales_summary SET revenue = revenue + 1 WHERE ctid = (SELECT ctid FROM sales_summary"
                        " ORDER BY window_start LIMIT 1) RETURNING window_start, category, brand, payment_method")
            tampered = cur.fetchone()
        conn.close()
        try:
            browser.wait_for("!document.querySelector('#run-validate').disabled", 60)
            browser.evaluate("document.querySelector('#run-validate').click()")
            browser.wait_for(f"{RAN_AT} !== {json.dumps(ran_at)}", 120)
            assert browser.evaluate(VERDICT) == "mismatch"
            assert "mismatch" in browser.evaluate("document.querySelector('#validation-sinks').textContent")
            for width in (1280, 390):
                shot = browser.screenshot(artifacts_dir() / f"live-view-{width}.png", width)
                assert png_distinct_bytes(shot) > 20, f"{shot} is blank"
                record_property(f"screenshot_{width}", str(shot))
                print(f"screenshot: {shot}")
        finally:
            with pg_connect(stack) as conn, conn.cursor() as cur:
                cur.execute("UPDATE sales_summary SET revenue = revenue - 1 WHERE window_start = %s AND category = %s"
                            " AND brand = %s AND payment_method = %s", tampered)
            conn.close()
        assert browser.console_errors() == []
    assert cli(stack, "validate", "--json", "--wait", "60s") == ExitCode.OK


def test_live_view_answers_only_on_its_address_and_not_to_another_origin(stack, capsys):
    from streamctl.verdicts import latest

    outward = outward_address()
    with socket.socket() as probe:
        probe.settimeout(3)
        assert probe.connect_ex((outward, TEST_PORTS["ui"])) != 0, f"the live view answers on {outward}"
    before = latest(settings_of(stack).stack_dir)
    # A page of another origin (another port) tries the POST with what a page may send without asking.
    attacker = (f"<form id=f method=post action='{LIVE_VIEW}api/validate' enctype=text/plain>"
                "<input name='{\"a\":\"' value='\"}'></form><script>"
                f"fetch('{LIVE_VIEW}api/validate', {{method: 'POST', mode: 'no-cors', body: '{{}}'}});"
                f"fetch('{LIVE_VIEW}api/validate', {{method: 'POST', headers: {{'Content-Type': 'application/json', "
                f"'X-Streamctl-Token': 'guess'}}, body: '{{}}'}}).catch(() => {{}});"
                "setTimeout(() => document.getElementById('f').submit(), 500);</script>")
    with serve_page(attacker) as url, Page() as browser:
        browser.open(url)
        time.sleep(3)
    status, body = get(f"{LIVE_VIEW}api/validation")
    assert status == 200 and json.loads(body)["running"] is False
    assert latest(settings_of(stack).stack_dir) == before, "a page of another origin ran validate"


def outward_address() -> str:
    """This machine's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect(("192.0.2.1", 9))
        address = udp.getsockname()[0]
    assert not address.startswith("127."), "this machine has no address but loopback"
    return address


@contextlib.contextmanager
def serve_page(html: str):
    import http.server
    import threading

    class One(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), One)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_dashboard_shows_the_latest_window(stack, capsys):
    assert cli(stack, "dashboard", "--once") == ExitCode.OK
    out = capsys.readouterr().out
    assert "revenue by category" in out and "sales by payment method" in out
    assert "Flink job" in out and "RUNNING" in out
    names = provision.StackNames.of(settings_of(stack))
    assert f"lag {names.job_group}" in out and f"lag {names.indexer_group}" in out


def test_validate_names_a_deleted_postgres_row(stack, capsys):
    with pg_connect(stack) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM sales_summary WHERE ctid = (SELECT ctid FROM sales_summary ORDER BY window_start"
                    " LIMIT 1) RETURNING *")
        deleted = cur.fetchone()
    conn.close()
    try:
        code = cli(stack, "validate", "--json")
        report = json.loads(capsys.readouterr().out)
        assert code == ExitCode.CHECK_FAILED and report["verdict"] == "mismatch"
        (missing,) = report["sinks"]["postgres"]["missing"]
        assert (missing["category"], missing["brand"], missing["payment_method"]) == deleted[2:5]
        assert report["sinks"]["elasticsearch"]["exact"] is True
    finally:
        with pg_connect(stack) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO sales_summary VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", deleted)
        conn.close()


def test_validate_names_a_changed_elasticsearch_document(stack, capsys):
    settings = settings_of(stack)
    base = f"http://127.0.0.1:{settings.ports.elasticsearch}/{settings.elasticsearch.index}"
    status, body = get(f"{base}/_search?size=1&sort=window_start:asc")
    hit = json.loads(body)["hits"]["hits"][0]
    doc = dict(hit["_source"])
    original = doc["revenue"]
    doc["revenue"] = str(Decimal(original) + Decimal("0.01"))
    doc_url = f"{base}/_doc/{urllib.parse.quote(hit['_id'], safe='')}?refresh=true"
    assert post_json(doc_url, doc)[0] in (200, 201)
    try:
        code = cli(stack, "validate", "--json")
        report = json.loads(capsys.readouterr().out)
        assert code == ExitCode.CHECK_FAILED
        (different,) = report["sinks"]["elasticsearch"]["different"]
        assert different["category"] == doc["category"] and different["brand"] == doc["brand"]
        assert Decimal(different["actual"]["revenue"]) - Decimal(different["expected"]["revenue"]) == Decimal("0.01")
        assert report["sinks"]["postgres"]["exact"] is True
    finally:
        doc["revenue"] = original
        assert post_json(doc_url, doc)[0] in (200, 201)


@pytest.mark.destructive
def test_validate_with_elasticsearch_stopped_exits_2(stack, capsys):
    runtime = LocalRuntime(settings_of(stack))
    runtime.supervisor.stop("elasticsearch", timeout_s=30)
    try:
        code = cli(stack, "validate")
        err = capsys.readouterr().err
        assert code == ExitCode.UNAVAILABLE
        assert "Elasticsearch is unreachable" in err
    finally:
        assert cli(stack, "up") == ExitCode.OK
    assert cli(stack, "validate", "--wait", "30s") == ExitCode.OK


@pytest.mark.destructive
def test_kafka_down_gives_503_then_up_recovers(stack, api):
    runtime = LocalRuntime(settings_of(stack))
    runtime.supervisor.stop("kafka", timeout_s=30)
    status, headers, body = post_json(f"{api}/transaction", transaction())
    assert status == 503 and {k.lower(): v for k, v in headers.items()}.get("retry-after") == "2", body
    wait_for(lambda: get(f"{api}/health")[0] == 503, 15, what="/health to turn 503")
    assert cli(stack, "up") == ExitCode.OK  # restarts what is missing, leaves the rest
    wait_for(lambda: get(f"{api}/health")[0] == 200, 30, what="/health to recover")
    assert post_json(f"{api}/transaction", transaction())[0] == 201


@pytest.mark.ends_stack
def test_down_leaves_nothing_then_up_keeps_data_then_purge(stack):
    settings = settings_of(stack)
    runtime = LocalRuntime(settings)
    records = [runtime.supervisor.record(name) for name in [s.name for s in services_only()] + ["watchdog"]]
    assert all(records)
    pids = [p for r in records if r for p in [r.pid, *group_pids(r.pid)]]
    assert len(pids) >= len(records)
    with pg_connect(stack) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM sales_summary")
        rows_before = cur.fetchone()[0]
    assert rows_before > 0
    # down takes a savepoint of a running job only: Kafka's outage in the test before may still restart it
    rest = f"http://127.0.0.1:{TEST_PORTS['flink_rest']}"
    job_name = provision.StackNames.of(settings).job_name
    wait_for(lambda: (job := provision.find_job(rest, job_name)) is not None
             and provision.job_fully_running(rest, job.job_id)[0], 120, what="the job to run every task before down")

    assert cli(stack, "down") == ExitCode.OK
    assert (settings.stack_dir / "flink" / "last-savepoint").is_file()
    assert pids_alive(pids) == []
    busy = [name for name, port in TEST_PORTS.items()
            if name not in ("kibana", "kafka_ui") and not port_free("127.0.0.1", port)]
    assert busy == []

    assert cli(stack, "up") == ExitCode.OK
    # Flink keeps a TaskManager's working directory (32 MB) when a SIGTERM ends it; up removes the old one
    assert len(list((settings.stack_dir / "flink" / "tmp").glob("tm_*"))) == 1
    with pg_connect(stack) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM sales_summary")
        assert cur.fetchone()[0] >= rows_before
    restored = restored_from(stack)
    assert restored["is_savepoint"] is True and "savepoint" in restored["external_path"]

    assert cli(stack, "down", "--purge") == ExitCode.OK
    assert not settings.stack_dir.exists()
