"""An asyncio face on kafka-python's producer: a send resolves only when the broker acknowledged it
(acks=all, idempotent), so the API answers 2xx only for records durably in Kafka."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

log = logging.getLogger("streamctl.producer.kafka")


class KafkaUnavailable(Exception):
    """Kafka could not take the record now; the client should retry later (HTTP 503)."""


class KafkaWriter:
    def __init__(self, bootstrap: str, topic: str, ack_timeout_s: float = 10.0, **producer_options: Any):
        self.bootstrap = bootstrap
        self.topic = topic
        self.ack_timeout_s = ack_timeout_s
        self._options = producer_options
        self._producer: KafkaProducer | None = None
        self._connecting = threading.Lock()
        self.last_ack_monotonic = 0.0
        self.partitions: list[int] = []

    def _connect(self) -> KafkaProducer:
        with self._connecting:
            if self._producer is None:
                producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=5,
                    batch_size=256 * 1024,
                    max_in_flight_requests_per_connection=5,
                    request_timeout_ms=int(self.ack_timeout_s * 1000 / 2),
                    delivery_timeout_ms=int(self.ack_timeout_s * 1000),
                    max_block_ms=2000,
                    retry_backoff_ms=100,
                    **self._options,
                )
                self.partitions = sorted(producer.partitions_for(self.topic) or [])
                self._producer = producer
            return self._producer

    async def connect(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._connect)

    @property
    def connected(self) -> bool:
        return self._producer is not None

    def healthy(self, within_s: float) -> bool:
        return self.connected and time.monotonic() - self.last_ack_monotonic < within_s

    async def send(self, key: bytes | None, value: bytes, timestamp_ms: int, partition: int | None = None) -> None:
        """Resolve when the broker acknowledged the record; raise KafkaUnavailable otherwise."""
        loop = asyncio.get_running_loop()
        if self._producer is None:
            try:
                await loop.run_in_executor(None, self._connect)
            except Exception as exc:  # NoBrokersAvailable, KafkaTimeoutError, socket errors
                raise KafkaUnavailable(f"cannot reach Kafka at {self.bootstrap}: {exc}") from None
        waiter: asyncio.Future = loop.create_future()

        def on_ack(_metadata: Any) -> None:
            loop.call_soon_threadsafe(_resolve, waiter, None)

        def on_error(exc: BaseException) -> None:
            loop.call_soon_threadsafe(_resolve, waiter, exc)

        try:
            future = self._producer.send(self.topic, value=value, key=key, timestamp_ms=timestamp_ms,
                                         partition=partition)
        except KafkaError as exc:  # buffer full or metadata unavailable within max_block_ms
            raise KafkaUnavailable(str(exc)) from None
        future.add_callback(on_ack)
        future.add_errback(on_error)
        try:
            await asyncio.wait_for(waiter, timeout=self.ack_timeout_s)
        except asyncio.TimeoutError:
            raise KafkaUnavailable("no acknowledgement from Kafka in time") from None
        self.last_ack_monotonic = time.monotonic()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)


def _resolve(waiter: asyncio.Future, exc: BaseException | None) -> None:
    if waiter.done():
        return
    if exc is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(KafkaUnavailable(f"Kafka did not acknowledge: {exc}"))
