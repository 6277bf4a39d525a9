"""HTTP semantics of the producer API that are decided before Kafka is involved.

The writer here refuses every send: these requests must never reach Kafka. Everything that does
reach Kafka is tested against a real broker in tests/integration.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from streamctl.pipeline.job_lag import JobLag
from streamctl.pipeline.producer import ProducerApp, ProducerConfig
from tests.payloads import reference_payload


class RefusingWriter:
    connected = False
    partitions: list[int] = []

    def healthy(self, within_s: float) -> bool:
        return False

    async def send(self, *args, **kwargs):
        raise AssertionError("nothing may reach Kafka in these tests")


def call(app: ProducerApp, method: str, path: str, body: bytes = b"", content_type: str | None = "application/json",
         chunks: int = 1):
    headers = [(b"content-type", content_type.encode())] if content_type else []
    headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    size = max(1, len(body) // chunks + 1)
    parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = sent[0]["status"]
    headers = dict(sent[0]["headers"])
    return status, headers, sent[1]["body"]


@pytest.fixture
def app():
    return ProducerApp(ProducerConfig(max_body_bytes=10_000, max_batch_records=3), writer=RefusingWriter())


def test_invalid_transaction_is_400_naming_fields(app):
    payload = reference_payload() | {"product_quantity": 0, "currency": "xx"}
    status, _, body = call(app, "POST", "/transaction", orjson.dumps(payload))
    assert status == 400
    assert set(orjson.loads(body)["fields"]) == {"product_quantity", "currency"}


def test_not_json_is_400(app):
    status, _, body = call(app, "POST", "/transaction", b"{not json")
    assert status == 400 and b"not valid JSON" in body


def test_wrong_content_type_is_415(app):
    assert call(app, "POST", "/transaction", orjson.dumps(reference_payload()), "text/plain")[0] == 415
    assert call(app, "POST", "/transaction", orjson.dumps(reference_payload()), None)[0] == 415
    assert call(app, "POST", "/transaction", orjson.dumps(reference_payload()), "application/json; charset=utf-8")[0] != 415


def test_body_over_the_cap_is_413_by_header_and_by_stream(app):
    big = b'{"x": "' + b"a" * 20_000 + b'"}'
    huge = b"a" * 50_000
    assert call(app, "POST", "/transaction", big)[0] == 413
    assert call(app, "POST", "/transaction", big, chunks=10)[0] == 413
    assert call(app, "POST", "/transaction", huge, chunks=10)[0] == 413  # past the drain limit


def test_batch_over_the_record_cap_is_413(app):
    batch = orjson.dumps([reference_payload() for _ in range(4)])
    assert call(app, "POST", "/transactions", batch)[0] == 413


def test_batch_must_be_an_array_or_ndjson(app):
    assert call(app, "POST", "/transactions", b'{"a": 1}')[0] == 400
    assert call(app, "POST", "/transactions", b"[1, 2", "application/x-ndjson")[0] == 400
    assert call(app, "POST", "/transactions", b"[]", "text/csv")[0] == 415


def test_health_is_503_without_kafka(app):
    status, headers, body = call(app, "GET", "/health", content_type=None)
    assert status == 503 and headers[b"retry-after"] == b"2"
    assert orjson.loads(body)["status"] != "OK"


def test_unknown_path_and_method(app):
    assert call(app, "GET", "/nope", content_type=None)[0] == 404
    assert call(app, "GET", "/transaction", content_type=None)[0] == 405


def test_openapi_document_describes_the_contract(app):
    status, _, body = call(app, "GET", "/openapi.json", content_type=None)
    document = orjson.loads(body)
    assert status == 200 and document["openapi"].startswith("3.")
    schema = document["components"]["schemas"]["Transaction"]
    assert "transaction_id" in schema["required"] and "transaction_date" not in schema["required"]
    assert {"/transaction", "/transactions", "/health", "/metrics"} <= set(document["paths"])


def test_metrics_count_rejections(app):
    call(app, "POST", "/transaction", b"{}")
    call(app, "POST", "/transaction", b"{}", "text/plain")
    status, _, body = call(app, "GET", "/metrics", content_type=None)
    text = body.decode()
    assert status == 200
    assert 'streamctl_producer_records_rejected_total{reason="invalid"} 1' in text
    assert 'streamctl_producer_records_rejected_total{reason="media_type"} 1' in text
    assert "streamctl_producer_records_accepted_total 0" in text


@pytest.mark.parametrize("interval_ms", [1000, 250, 2000])
def test_heartbeats_go_out_just_after_the_wall_clocks_ticks(interval_ms):
    # Windows and the watermark delay are whole seconds: a beat just after each tick closes a window
    # when it may close. Beats spaced a plain interval apart drift up to an interval behind it.
    from streamctl.pipeline.producer import BEAT_AFTER_TICK_MS, seconds_to_next_beat

    for start in (1_800_000_000_000, 1_800_000_000_004, 1_800_000_000_005, 1_800_000_000_731):
        now, beats = start, []
        for _ in range(5):
            now += round(seconds_to_next_beat(now, interval_ms) * 1000)
            beats.append(now)
        assert all(beat % interval_ms == BEAT_AFTER_TICK_MS for beat in beats), (start, beats)
        assert all(b - a == interval_ms for a, b in zip(beats, beats[1:]))
        assert 0 < beats[0] - start <= interval_ms


def behind_app(lag_seconds: float | None, read_s_ago: float = 0.0) -> ProducerApp:
    app = ProducerApp(ProducerConfig(max_body_bytes=10_000, max_batch_records=3, max_lag_seconds=5,
                                     flink_url="http://127.0.0.1:1", job_name="j"), writer=RefusingWriter())
    app.job_lag, app.job_lag_read_at = JobLag(lag_seconds), time.monotonic() - read_s_ago
    return app


def test_a_job_more_than_max_lag_behind_gets_429_with_retry_after_and_nothing_reaches_kafka():
    app = behind_app(12.3)
    status, headers, body = call(app, "POST", "/transaction", orjson.dumps(reference_payload()))
    assert status == 429 and headers[b"retry-after"] == b"8"  # 12.3 - 5, rounded up
    assert "12.3 s of ingest behind" in orjson.loads(body)["detail"]
    status, headers, _ = call(app, "POST", "/transactions", orjson.dumps([reference_payload()]))
    assert status == 429 and headers[b"retry-after"] == b"8"
    assert app.counters.totals()["rejected_behind"] == 2


@pytest.mark.parametrize("lag, read_s_ago", [(4.9, 0.0), (None, 0.0), (30.0, 60.0)],
                         ids=["within the bound", "lag unknown", "lag read too long ago"])
def test_admission_refuses_only_what_it_knows_to_be_behind(lag, read_s_ago):
    app = behind_app(lag, read_s_ago)
    status, _, _ = call(app, "POST", "/transaction", orjson.dumps(reference_payload() | {"currency": "xx"}))
    assert status == 400  # went on to validation: not refused for lag


def test_admission_control_is_off_by_default_and_without_a_jobmanager():
    assert not ProducerConfig().admission_control
    assert not ProducerConfig(max_lag_seconds=5).admission_control  # nowhere to read the lag from
    assert ProducerConfig(max_lag_seconds=5, flink_url="http://f:8081", job_name="j").admission_control
