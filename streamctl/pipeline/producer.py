"""The producer REST API: a plain ASGI application served by granian (see docs/pipeline.md, "Producer API").

    POST /transaction    one transaction (application/json)            -> 201, 400, 413, 415, 429, 503
    POST /transactions   a batch: a JSON array or NDJSON, per-record results -> 200, 400, 413, 415, 429, 503
    GET  /health         {"status": "OK"} when Kafka takes writes, else 503
    GET  /metrics        Prometheus text: accepted and rejected records, summed over all workers
    GET  /openapi.json   the OpenAPI document

Configuration comes from PRODUCER_* environment variables (streamctl sets them).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import orjson

from streamctl.kafka_access import KafkaAccess
from streamctl.pipeline.contract import format_event_time, validate_transaction
from streamctl.pipeline.job_lag import JobLag, job_lag
from streamctl.pipeline.kafka_writer import KafkaUnavailable, KafkaWriter
from streamctl.pipeline.metrics import WorkerCounters
from streamctl.pipeline.openapi import openapi_document

log = logging.getLogger("streamctl.producer")
RETRY_AFTER_SECONDS = "2"
DRAIN_FACTOR = 4  # an oversized body is read and discarded up to this multiple of the cap
JSON = b"application/json"
NDJSON = b"application/x-ndjson"

Send = Callable[[dict], Awaitable[None]]
Receive = Callable[[], Awaitable[dict]]


@dataclass(frozen=True)
class ProducerConfig:
    kafka: KafkaAccess = KafkaAccess("127.0.0.1:9092")
    topic: str = "transactions"
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch_records: int = 5000
    heartbeat_interval_ms: int = 1000
    metrics_dir: str = ""
    # Admission control: above this many seconds of job lag, answer 429 (0: off). The lag comes from
    # the JobManager at flink_url (see streamctl/pipeline/job_lag.py).
    max_lag_seconds: float = 0.0
    flink_url: str = ""
    job_name: str = ""
    watermark_delay_ms: int = 1000

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "ProducerConfig":
        env = dict(os.environ if env is None else env)
        return cls(
            kafka=KafkaAccess.from_env(env, "PRODUCER"),
            topic=env.get("PRODUCER_TOPIC", cls.topic),
            max_body_bytes=int(env.get("PRODUCER_MAX_BODY_BYTES", cls.max_body_bytes)),
            max_batch_records=int(env.get("PRODUCER_MAX_BATCH_RECORDS", cls.max_batch_records)),
            heartbeat_interval_ms=int(env.get("PRODUCER_HEARTBEAT_INTERVAL_MS", cls.heartbeat_interval_ms)),
            metrics_dir=env.get("PRODUCER_METRICS_DIR", ""),
            max_lag_seconds=float(env.get("PRODUCER_MAX_LAG_SECONDS", cls.max_lag_seconds)),
            flink_url=env.get("PRODUCER_FLINK_URL", ""),
            job_name=env.get("PRODUCER_JOB_NAME", ""),
            watermark_delay_ms=int(env.get("PRODUCER_WATERMARK_DELAY_MS", cls.watermark_delay_ms)),
        )

    @property
    def admission_control(self) -> bool:
        return self.max_lag_seconds > 0 and bool(self.flink_url and self.job_name)


class BodyTooLarge(Exception):
    pass


@dataclass
class Response:
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def json_response(status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
    return Response(status, orjson.dumps(payload), JSON, headers or [])


def unavailable(reason: str) -> Response:
    return json_response(503, {"error": "Kafka is unavailable; retry later", "detail": reason},
                         [(b"retry-after", RETRY_AFTER_SECONDS.encode())])


# Window bounds and the watermark delay are whole seconds, so a window may close exactly on a tick
# of the wall clock: a heartbeat just after each tick closes it then, not up to an interval later.
BEAT_AFTER_TICK_MS = 5


def seconds_to_next_beat(now: int, interval_ms: int) -> float:
    """From `now` (epoch ms) to the next interval tick of the wall clock plus BEAT_AFTER_TICK_MS."""
    next_beat = (now - BEAT_AFTER_TICK_MS) // interval_ms * interval_ms + interval_ms + BEAT_AFTER_TICK_MS
    return (next_beat - now) / 1000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


LAG_POLL_S = 1.0
LAG_STALE_S = 10.0  # a lag read longer ago than this is not acted on


def behind(lag: JobLag | None, read_at: float, max_lag_seconds: float, now: float) -> Response | None:
    """429 when the job is known to be more than `max_lag_seconds` behind; None otherwise. A lag that
    cannot be told (no job, the JobManager away) or is stale refuses nothing: the records wait in
    Kafka, and health and validate report the outage."""
    if max_lag_seconds <= 0 or lag is None or lag.seconds is None or now - read_at > LAG_STALE_S:
        return None
    if lag.seconds <= max_lag_seconds:
        return None
    retry_after = max(1, math.ceil(lag.seconds - max_lag_seconds))
    return json_response(429, {"error": "the pipeline is behind; retry later",
                               "detail": f"the job is {lag.seconds:.1f} s of ingest behind, more than"
                                         f" producer.max_lag_seconds ({max_lag_seconds:g})"},
                         [(b"retry-after", str(retry_after).encode())])


class ProducerApp:
    def __init__(self, config: ProducerConfig, writer: KafkaWriter | None = None):
        self.config = config
        self.writer = writer or KafkaWriter(config.kafka, config.topic)
        self.counters = WorkerCounters(Path(config.metrics_dir) if config.metrics_dir else None)
        self._background: list[asyncio.Task] = []
        self.job_lag: JobLag | None = None
        self.job_lag_read_at = 0.0
        self._openapi = orjson.dumps(openapi_document(config.max_body_bytes, config.max_batch_records))
        self.routes: dict[tuple[str, str], Callable[[dict, Receive], Awaitable[Response]]] = {
            ("POST", "/transaction"): self.post_transaction,
            ("POST", "/transactions"): self.post_transactions,
            ("GET", "/health"): self.get_health,
            ("GET", "/metrics"): self.get_metrics,
            ("GET", "/openapi.json"): self.get_openapi,
        }

    # -- ASGI ---------------------------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        handler = self.routes.get((scope["method"], scope["path"]))
        if handler is None:
            if any(path == scope["path"] for _, path in self.routes):
                response = json_response(405, {"error": f"method {scope['method']} not allowed"})
            else:
                response = json_response(404, {"error": f"no such endpoint {scope['path']}"})
        else:
            try:
                response = await handler(scope, receive)
            except Exception:  # a bug must not become a hung connection; it is logged and counted
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
                self.counters.add("internal_errors")
                response = json_response(500, {"error": "internal error"})
        headers = [(b"content-type", response.content_type), (b"content-length", str(len(response.body)).encode())]
        await send({"type": "http.response.start", "status": response.status, "headers": headers + response.headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._background.append(asyncio.create_task(self._heartbeats()))
                self._background.append(asyncio.create_task(self._publish_counters()))
                if self.config.admission_control:
                    self._background.append(asyncio.create_task(self._watch_job_lag()))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._background:
                    task.cancel()
                await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
                self.counters.remove()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- request plumbing -----------------------------------------------------------------------
    async def _read_body(self, scope: dict, receive: Receive) -> bytes:
        limit = self.config.max_body_bytes
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            elif size > DRAIN_FACTOR * limit:
                raise BodyTooLarge  # too much to even drain: answer now, the server drops the connection
            if not message.get("more_body"):
                break
        if size > limit:  # drained, so the client can read the 413 instead of a broken pipe
            raise BodyTooLarge
        return b"".join(chunks)

    @staticmethod
    def _content_type(scope: dict) -> bytes:
        for name, value in scope.get("headers", []):
            if name == b"content-type":
                return value.split(b";")[0].strip().lower()
        return b""

    def _behind(self) -> Response | None:
        refusal = behind(self.job_lag, self.job_lag_read_at, self.config.max_lag_seconds, time.monotonic())
        if refusal is not None:
            self.counters.add("rejected_behind")
        return refusal

    def _too_large(self) -> Response:
        self.counters.add("rejected_too_large")
        return json_response(413, {"error": f"body larger than {self.config.max_body_bytes} bytes"})

    def _unsupported(self, allowed: str) -> Response:
        self.counters.add("rejected_media_type")
        return json_response(415, {"error": f"Content-Type must be {allowed}"})

    async def _publish(self, record: dict[str, Any], timestamp_ms: int) -> None:
        await self.writer.send(record["transaction_id"].encode(), orjson.dumps(record), timestamp_ms)

    # -- endpoints ------------------------------------------------------------------------------
    async def post_transaction(self, scope: dict, receive: Receive) -> Response:
        if self._content_type(scope) != JSON:
            return self._unsupported("application/json")
        try:
            body = await self._read_body(scope, receive)
        except BodyTooLarge:
            return self._too_large()
        if (refusal := self._behind()) is not None:
            return refusal
        received_ms = now_ms()
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.counters.add("rejected_invalid")
            return json_response(400, {"error": "body is not valid JSON"})
        record, errors = validate_transaction(payload, format_event_time(received_ms))
        if record is None:
            self.counters.add("rejected_invalid")
            return json_response(400, {"error": "invalid transaction", "fields": errors})
        try:
            await self._publish(record, received_ms)
        except KafkaUnavailable as exc:
            self.counters.add("rejected_unavailable")
            return unavailable(str(exc))
        self.counters.add("accepted")
        return json_response(201, {"status": "accepted", "transaction_id": record["transaction_id"],
                                   "transaction_date": record["transaction_date"]})

    async def post_transactions(self, scope: dict, receive: Receive) -> Response:
        kind = self._content_type(scope)
        if kind not in (JSON, NDJSON):
            return self._unsupported("application/json (an array) or application/x-ndjson")
        try:
            body = await self._read_body(scope, receive)
        except BodyTooLarge:
            return self._too_large()
        if (refusal := self._behind()) is not None:
            return refusal
        received_ms = now_ms()
        try:
            if kind == JSON:
                payloads = orjson.loads(body)
                if not isinstance(payloads, list):
                    raise ValueError("a JSON array is expected")
            else:
                payloads = [orjson.loads(line) for line in body.splitlines() if line.strip()]
        except (orjson.JSONDecodeError, ValueError) as exc:
            self.counters.add("rejected_invalid")
            return json_response(400, {"error": f"body is not a valid batch: {exc}"})
        if len(payloads) > self.config.max_batch_records:
            self.counters.add("rejected_too_large")
            return json_response(413, {"error": f"more than {self.config.max_batch_records} records in one batch"})
        event_time = format_event_time(received_ms)
        results: list[dict[str, Any]] = []
        valid: list[dict[str, Any]] = []
        for index, payload in enumerate(payloads):
            record, errors = validate_transaction(payload, event_time)
            if record is None:
                results.append({"index": index, "status": "rejected", "fields": errors})
            else:
                valid.append(record)
                results.append({"index": index, "status": "accepted", "transaction_id": record["transaction_id"]})
        outcomes = await asyncio.gather(*(self._publish(r, received_ms) for r in valid), return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            self.counters.add("rejected_unavailable", len(valid))
            self.counters.add("rejected_invalid", len(payloads) - len(valid))
            return unavailable(f"{len(failed)} of {len(valid)} records not acknowledged: {failed[0]}")
        rejected = len(payloads) - len(valid)
        self.counters.add("accepted", len(valid))
        self.counters.add("rejected_invalid", rejected)
        return json_response(200, {"accepted": len(valid), "rejected": rejected, "transaction_date": event_time,
                                   "results": results})

    async def get_health(self, scope: dict, receive: Receive) -> Response:
        window_s = 3 * self.config.heartbeat_interval_ms / 1000 + 1
        if self.writer.healthy(window_s):
            return json_response(200, {"status": "OK"})
        return json_response(503, {"status": "UNAVAILABLE", "detail": f"no Kafka acknowledgement in {window_s:.0f} s"},
                             [(b"retry-after", RETRY_AFTER_SECONDS.encode())])

    async def get_metrics(self, scope: dict, receive: Receive) -> Response:
        return Response(200, self.counters.prometheus_text().encode(), b"text/plain; version=0.0.4")

    async def get_openapi(self, scope: dict, receive: Receive) -> Response:
        return Response(200, self._openapi)

    # -- background -----------------------------------------------------------------------------
    async def _heartbeats(self) -> None:
        """One heartbeat record per partition per interval: the job's watermark moves with them, so
        the last window closes on time even when no transaction arrives. They go out on the wall
        clock's interval ticks (see seconds_to_next_beat)."""
        while True:
            try:
                if not self.writer.connected:
                    await self.writer.connect()
                ts = now_ms()
                value = orjson.dumps({"heartbeat": True, "transaction_date": format_event_time(ts)})
                await asyncio.gather(*(self.writer.send(None, value, ts, partition=p) for p in self.writer.partitions))
                self.counters.add("heartbeats", len(self.writer.partitions))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka down: health turns 503; keep trying
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(seconds_to_next_beat(now_ms(), self.config.heartbeat_interval_ms))

    async def _watch_job_lag(self) -> None:
        """The job's lag, read from the JobManager every LAG_POLL_S (in a thread: it blocks)."""
        config = self.config
        while True:
            try:
                lag = await asyncio.to_thread(job_lag, config.flink_url, config.job_name, config.watermark_delay_ms, 2,
                                              False)  # polled every second: each poll refreshes the next
                self.job_lag, self.job_lag_read_at = lag, time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - never let the probe end: it would stop refusing
                log.warning("reading the job's lag failed: %s", exc)
            await asyncio.sleep(LAG_POLL_S)

    async def _publish_counters(self) -> None:
        while True:
            await asyncio.sleep(1)
            self.counters.flush()


def create_app() -> ProducerApp:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return ProducerApp(ProducerConfig.from_env())


app = create_app() if os.environ.get("PRODUCER_KAFKA_BOOTSTRAP") else None
