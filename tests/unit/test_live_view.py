"""The live view without a stack: what it renders from a snapshot, how it turns counters into rates
and sightings into freshness, and whom its HTTP server answers. Against a real stack and a real
browser: tests/integration/test_local_stack.py::test_live_view_*."""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path

import pytest

from streamctl.live.figures import _series
from streamctl.live.observer import GIVE_UP_S, CounterSample, FreshnessWatch, rates
from streamctl.live.render import page, render_sections
from streamctl.live.server import TOKEN_HEADER, LiveServer, allowed_hosts

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def snapshot(starts: int = 3, category: str = "Books", verdict: str | None = "exact") -> dict:
    windows = {
        "starts": [f"2026-11-27T10:0{i}:00.000Z" for i in range(starts)],
        "ends": [f"2026-11-27T10:0{i + 1}:00.000Z" for i in range(starts)],
        "by_category": [{"name": category, "revenue": [100.0 + i for i in range(starts)],
                         "transactions": [1] * starts}] if starts else [],
        "by_payment_method": [{"name": "Pix", "revenue": [100.0] * starts, "transactions": [1] * starts}]
        if starts else [],
        "totals": {"windows": starts, "transactions": starts, "items_sold": starts, "revenue": "300.00"},
    }
    latest = None if verdict is None else {
        "verdict": verdict, "exit_code": 0, "source": "cli", "ran_at": "2026-11-27T10:05:00Z", "seconds": 1.5,
        "transactions": 3, "records": 10, "windows": 3, "duplicates_dropped": 0,
        "sinks": {"postgres": {"exact": verdict == "exact", "matched": 3, "missing": 0, "extra": 0, "different": 1}},
        "pending_windows": 0, "inconclusive": []}
    return {"stack": "unit", "taken_at": "2026-11-27T10:05:00.000Z", "window_seconds": 60, "windows": windows,
            "ingest": {"series": [{"t": f"2026-11-27T10:05:0{i}.000Z", "accepted_per_s": float(i),
                                   "rejected_per_s": 0.0, "unavailable_per_s": 0.0} for i in range(3)],
                       "totals": {"at": 0, "accepted": 3, "rejected": 0, "unavailable": 0}, "sample_s": 1.0},
            "kafka": [{"group": "g", "topic": "transactions", "end_offsets": 10, "committed": 8, "lag": 2}],
            "job": {"state": "RUNNING", "uptime_s": 12.0, "restarts": 0, "parallelism": 2,
                    "last_checkpoint_age_s": 3.0, "watermark_delay_s": 4.0, "lag_s": 0.4, "falling_behind": False},
            "freshness": {"windows": [{"window_start": "2026-11-27T10:00:00.000Z",
                                       "window_end": "2026-11-27T10:01:00.000Z", "postgres_s": 2.5,
                                       "elasticsearch_s": 3.0, "never_seen": False}], "resolution_s": 0.25},
            "validation": {"latest": latest, "running": False, "error": ""}, "problems": []}


# -- rendering ---------------------------------------------------------------------------------------

def test_every_string_from_the_stack_is_escaped():
    html = page(snapshot(category=HOSTILE), live=True, token="t")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert html.count("<script") == 1 and '<script src="/live.js" defer></script>' in html


def test_the_report_is_self_contained_and_has_no_button():
    html = page(snapshot(), live=False)
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert 'id="run-validate"' not in html and "streamctl validate" in html
    for section in ("windows-section", "ingest-section", "job-section", "freshness-section", "validation-section"):
        assert f'id="{section}"' in html


def test_one_window_is_a_bar_and_a_sentence_not_a_dot():
    html = render_sections(snapshot(starts=1), live=True)
    assert "One window so far (10:00:00-10:01:00 UTC)" in html
    assert 'data-windows="1"' in html and html.count('class="bar"') == 2  # one per chart
    assert "<circle" not in html


def test_the_jobs_lag_shows_and_says_falling_behind_only_when_it_is():
    keeping_up = render_sections(snapshot(), live=True)
    assert "lag (ingest not read yet)" in keeping_up and "0.4 s" in keeping_up
    assert "falling behind" not in keeping_up
    late = snapshot()
    late["job"] |= {"lag_s": 42.5, "falling_behind": True}
    html = render_sections(late, live=True)
    assert "42.5 s" in html and 'id="job-falling-behind">falling behind' in html


def test_no_window_yet_says_so():
    html = render_sections(snapshot(starts=0), live=True)
    assert "No window in PostgreSQL yet" in html and 'class="bar"' not in html


def test_the_time_axis_is_the_real_window_bounds():
    html = render_sections(snapshot(starts=3), live=True)
    assert 'data-last-window="2026-11-27T10:02:00.000Z"' in html
    assert "Books, 10:02:00-10:03:00: 102.00 revenue" in html


def test_the_verdict_shows_with_its_counts():
    html = render_sections(snapshot(verdict="mismatch"), live=True)
    assert 'data-verdict="mismatch"' in html and "MISMATCH" in html and "<b>mismatch</b>" in html
    assert 'data-verdict="none"' in render_sections(snapshot(verdict=None), live=True)


def test_more_categories_than_shown_are_summed_as_other():
    rows = [(0, f"c{n}", float(n), 1) for n in range(12)]
    series = _series(rows, [0])
    assert [s["name"] for s in series][:2] == ["c11", "c10"] and series[-1]["name"] == "other"
    assert series[-1]["revenue"] == [0.0 + 1 + 2 + 3] and series[-1]["transactions"] == [4]


# -- counters and freshness ---------------------------------------------------------------------------

def test_rates_are_per_second_and_survive_a_producer_restart():
    samples = [CounterSample(0.0, 0, 0, 0), CounterSample(2.0, 100, 4, 0), CounterSample(3.0, 30, 4, 1)]
    series = rates(samples)
    assert [p["accepted_per_s"] for p in series] == [50.0, 30.0]  # the counter restarted at 0
    assert [p["rejected_per_s"] for p in series] == [2.0, 0.0] and series[1]["unavailable_per_s"] == 1.0


def test_freshness_is_timed_from_the_window_end_for_each_sink(tmp_path):
    watch = FreshnessWatch(60_000, 1_499, tmp_path / "freshness.json")
    watch.accepted_between(60_500, 61_000)  # accepted in window [60 s, 120 s); tolerance reaches the one before
    assert sorted(watch.awaited) == [0, 60_000]
    watch.saw(119_000, {60_000}, {60_000})  # not due yet: the window has not ended
    assert watch.recent() == []
    watch.saw(121_500, {60_000}, set())
    watch.saw(122_000, {60_000}, {60_000})
    [seen] = watch.recent()
    assert (seen["postgres_s"], seen["elasticsearch_s"]) == (1.5, 2.0)
    assert sorted(watch.awaited) == [0]
    watch.saw(int(60_000 + GIVE_UP_S * 1000) + 1, set(), set())  # nothing ever showed: not a window
    assert watch.awaited == {} and len(watch.recent()) == 1
    again = FreshnessWatch(60_000, 1_499, tmp_path / "freshness.json")
    assert again.recent() == watch.recent()  # a restarted live view keeps what it saw


def test_a_window_seen_in_one_sink_only_is_reported_as_never_seen_in_the_other(tmp_path):
    watch = FreshnessWatch(10_000, 0, None)
    watch.accepted_between(1_000, 2_000)
    watch.saw(12_000, {0}, set())
    watch.saw(int(10_000 + GIVE_UP_S * 1000) + 1, {0}, set())
    [seen] = watch.recent()
    assert seen["never_seen"] and seen["postgres_s"] == 2.0 and seen["elasticsearch_s"] is None


# -- the HTTP server ----------------------------------------------------------------------------------

class FixedFigures:
    """Stands in for the observer (which reads the stack) in tests of the HTTP layer only."""

    def __init__(self) -> None:
        self.validations = 0
        self.running = False

    def snapshot(self) -> dict:
        return snapshot()

    def alive(self) -> bool:
        return True

    def start_validation(self) -> bool:
        if self.running:
            return False
        self.validations += 1
        self.running = True
        return True


@pytest.fixture
def server():
    live = LiveServer(FixedFigures(), "127.0.0.1", 0)  # type: ignore[arg-type]
    thread = threading.Thread(target=live.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield live
    live.shutdown()
    live.server_close()


def request(live: LiveServer, method: str, path: str, headers: dict | None = None, body: bytes = b""):
    port = live.server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def page_post(live: LiveServer, **changes) -> dict:
    port = live.server_address[1]
    headers = {"Content-Type": "application/json", TOKEN_HEADER: live.token, "Origin": f"http://127.0.0.1:{port}",
               "Sec-Fetch-Site": "same-origin", **changes}
    return {k: v for k, v in headers.items() if v is not None}


def test_the_page_carries_its_token_and_a_strict_policy(server):
    status, headers, body = request(server, "GET", "/")
    assert status == 200 and f'content="{server.token}"' in body.decode()
    assert "script-src 'self'" in headers["Content-Security-Policy"] and "frame-ancestors 'none'" in \
        headers["Content-Security-Policy"]
    status, _, body = request(server, "GET", "/api/job")
    assert status == 200 and json.loads(body)["state"] == "RUNNING"
    assert request(server, "GET", "/live.js")[0] == 200 and request(server, "GET", "/nothing")[0] == 404


def test_a_request_addressed_to_another_name_gets_421(server):
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1."""
    port = server.server_address[1]
    status, _, _ = request(server, "GET", "/api/snapshot", {"Host": f"evil.example:{port}"})
    assert status == 421
    status, _, _ = request(server, "POST", "/api/validate", {**page_post(server), "Host": f"evil.example:{port}"}, b"{}")
    assert status == 421 and server.observer.validations == 0
    assert request(server, "GET", "/health", {"Host": f"localhost:{port}"})[0] == 200


def test_get_never_runs_validate(server):
    status, headers, _ = request(server, "GET", "/api/validate")
    assert status == 405 and headers["Allow"] == "POST" and server.observer.validations == 0


@pytest.mark.parametrize("change, why", [
    ({TOKEN_HEADER: None}, "Token"), ({TOKEN_HEADER: "guessed"}, "Token"),
    ({"Content-Type": "text/plain"}, "application/json"),
    ({"Origin": "http://evil.example"}, "origin"), ({"Sec-Fetch-Site": "cross-site"}, "another site"),
])
def test_a_post_not_from_the_page_is_refused(server, change, why):
    status, _, body = request(server, "POST", "/api/validate", page_post(server, **change), b"{}")
    assert status == 403 and why in json.loads(body)["error"] and server.observer.validations == 0


def test_the_page_runs_validate_once_at_a_time(server):
    assert request(server, "POST", "/api/validate", page_post(server), b"{}")[0] == 202
    assert request(server, "POST", "/api/validate", page_post(server), b"{}")[0] == 409
    assert server.observer.validations == 1


def test_allowed_hosts_follow_the_bind_address():
    assert allowed_hosts("127.0.0.1", 8090) == {"127.0.0.1:8090", "localhost:8090", "[::1]:8090"}
    assert allowed_hosts("10.1.2.3", 8090) == {"10.1.2.3:8090"}
    assert allowed_hosts("0.0.0.0", 8090) is None  # expose: every name; the token still guards POST


def test_the_script_is_shipped_with_the_package():
    script = Path(__file__).resolve().parents[2] / "streamctl" / "live" / "live.js"
    assert TOKEN_HEADER in script.read_text() and "http" not in script.read_text().replace("/api/", "")


# -- the verdict the page shows -------------------------------------------------------------------

def test_the_kibana_check_of_a_docker_stack_reports_a_missing_dashboard(tmp_path):
    """It imported a module that had moved: validate on a docker stack with Kibana failed with a traceback."""
    from streamctl.config import load_settings
    import socket
    from streamctl.runtimes.select import record_runtime
    from streamctl.verdicts import KIBANA_MISSING, kibana_note

    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    settings = load_settings(env={}, cwd=tmp_path, overrides={"state_dir": str(tmp_path), "ports.kibana": closed})
    record_runtime(settings.stack_dir, "docker")
    assert kibana_note(settings).startswith(KIBANA_MISSING)
    record_runtime(settings.stack_dir, "local")
    assert "skipped" in kibana_note(settings)


# -- the command --------------------------------------------------------------------------------------

def test_ui_of_a_stack_that_was_never_brought_up_is_a_usage_error(cli, tmp_path):
    code, _, err = cli("--state-dir", str(tmp_path), "--stack", "nosuch", "ui")
    assert code == 64 and "there is no stack named 'nosuch'" in err and "Traceback" not in err


def test_ui_on_a_taken_port_says_which_setting_to_change(cli, tmp_path, monkeypatch):
    import socket

    from streamctl.runtimes.select import record_runtime

    record_runtime(tmp_path / "taken", "local")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setenv("STREAMCTL_PORTS_UI", str(port))
        code, _, err = cli("--state-dir", str(tmp_path), "--stack", "taken", "ui")
    assert code == 4 and f"port {port} (ports.ui) is already in use" in err and "STREAMCTL_PORTS_UI" in err


# -- the benchmark history in the report ---------------------------------------------------------------

def test_benchmark_runs_become_one_series_per_figure_oldest_first(tmp_path):
    from streamctl.bench.history import bench_history
    from streamctl.live.render import history_section

    bench = tmp_path / "bench"
    bench.mkdir()
    runs = [("startup-2.json", {"benchmark": "startup", "at": "2026-11-27T03:30:00Z", "best_s": 32.8,
                                "idle_cpu_percent_of_one_core": 21.9, "total_gib": 2.2}),
            ("startup-1.json", {"benchmark": "startup", "at": "2026-11-27T03:22:00Z", "best_s": 34.9,
                                "idle_cpu_percent_of_one_core": 25.2, "total_gib": 2.25}),
            ("ingest-1.json", {"benchmark": "ingest", "at": "2026-11-27T03:40:00Z", "ratio_single_vs_baseline": 6.1,
                               "figures": [{"server": "producer API, POST /transactions x1000",
                                            "acknowledged_per_s": 17468.0}]})]
    for name, run in runs:
        (bench / name).write_text(json.dumps(run))
    (bench / "broken.json").write_text("{not json")
    history = {series["label"]: series for series in bench_history(bench)}
    up = history["up until the job is RUNNING (best run)"]
    assert [p["value"] for p in up["points"]] == [34.9, 32.8] and up["better"] == "lower"
    assert history["batch endpoint"]["points"] == [{"at": "2026-11-27T03:40:00Z", "value": 17468.0}]
    assert "freshness p95, both sinks" not in history  # never measured: not drawn
    html = history_section(bench_history(bench))
    assert html.count('data-runs="2"') == 3 and "One run so far (2026-11-27T03:40:00Z)" in html
    assert "No benchmark has run" in history_section([])


# -- what the review of this view found ------------------------------------------------------------------

def test_on_every_interface_only_address_literals_and_this_machines_names_are_answered():
    import socket

    from streamctl.live.server import host_allowed

    assert host_allowed("10.1.2.3:8090", None, 8090) and host_allowed("[::1]:8090", None, 8090)
    assert host_allowed("localhost:8090", None, 8090) and host_allowed(f"{socket.gethostname()}:8090", None, 8090)
    assert not host_allowed("evil.example:8090", None, 8090)  # a name rebound to this machine
    assert not host_allowed("10.1.2.3:9999", None, 8090)


def test_a_bad_content_length_is_refused_without_reading(server):
    import socket

    with socket.create_connection(server.server_address, timeout=5) as raw:
        raw.sendall(f"POST /api/validate HTTP/1.1\r\nHost: 127.0.0.1:{server.server_address[1]}\r\n"
                    "Content-Length: -1\r\n\r\n".encode())
        assert raw.recv(100).startswith(b"HTTP/1.0 400")
    assert server.observer.validations == 0


def test_a_small_dip_in_a_counter_is_not_a_restart():
    samples = [CounterSample(0.0, 0, 0, 0), CounterSample(1.0, 100, 0, 0), CounterSample(2.0, 98, 0, 0)]
    assert [p["accepted_per_s"] for p in rates(samples)] == [100.0, 0.0]


def test_a_failing_step_is_a_problem_on_the_page_not_the_end_of_the_sampler(tmp_path):
    from streamctl.config import load_settings
    from streamctl.live.observer import Observer

    observer = Observer(load_settings(env={}, cwd=tmp_path, overrides={"state_dir": str(tmp_path)}))

    def broken() -> None:
        raise KeyError("aggregations")

    observer._guarded(broken)
    assert "broken: KeyError: 'aggregations'" in observer.snapshot_problems()
    observer._guarded(lambda: None)
    assert observer.alive() is False  # the loop never ran: /health says so
