"""An asyncio face on librdkafka's producer (confluent-kafka): a send resolves only when the broker
acknowledged it (acks=all, idempotent), so the API answers 2xx only for records durably in Kafka.

librdkafka rather than kafka-python here: with kafka-python the API answered 1,100-1,600
requests/s on 2 cores, bound by ~30 ms per acknowledged record, not by CPU (see docs/pipeline.md, "Producer API").
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from streamctl.kafka_access import KafkaAccess

log = logging.getLogger("streamctl.producer.kafka")
ANY_PARTITION = -1


class KafkaUnavailable(Exception):
    """Kafka could not take the record now; the client should retry later (HTTP 503)."""


class KafkaWriter:
    def __init__(self, kafka: KafkaAccess, topic: str, ack_timeout_s: float = 5.0):
        self.kafka = kafka
        self.bootstrap = kafka.bootstrap
        self.topic = topic
        self.ack_timeout_s = ack_timeout_s
        self._producer: Producer | None = None
        self._poller: threading.Thread | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self.last_ack_monotonic = 0.0
        self.partitions: list[int] = []

    def _connect(self) -> Producer:
        with self._lock:
            if self._producer is None:
                producer = Producer({
                    **self.kafka.librdkafka(),
                    "acks": "all",
                    "enable.idempotence": True,
                    "linger.ms": int(os.environ.get("PRODUCER_LINGER_MS", "5")),
                    "batch.num.messages": 10000,
                    "message.timeout.ms": int(self.ack_timeout_s * 1000),
                    "socket.keepalive.enable": True,
                    "log_level": 4,
                })
                try:
                    metadata = producer.list_topics(self.topic, timeout=3)
                except KafkaException as exc:
                    raise KafkaUnavailable(f"cannot reach Kafka at {self.bootstrap}: {exc}") from None
                topic = metadata.topics.get(self.topic)
                if topic is None or topic.error is not None or not topic.partitions:
                    raise KafkaUnavailable(f"topic {self.topic} is not available at {self.bootstrap}")
                self.partitions = sorted(topic.partitions)
                self._producer = producer
                self._closing = threading.Event()
                self._poller = threading.Thread(target=self._serve_callbacks, name="kafka-acks", daemon=True)
                self._poller.start()
            return self._producer

    def _serve_callbacks(self) -> None:
        producer, closing = self._producer, self._closing
        assert producer is not None  # started by _connect, after the producer is set
        while not closing.is_set():
            producer.poll(0.05)  # runs delivery callbacks on this thread

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
            except KafkaUnavailable:
                raise
            except Exception as exc:
                raise KafkaUnavailable(f"cannot reach Kafka at {self.bootstrap}: {exc}") from None
        waiter: asyncio.Future = loop.create_future()

        def on_delivery(error: KafkaError | None, _message: Any) -> None:
            if error is not None and error.fatal():
                self._discard()
            loop.call_soon_threadsafe(_resolve, waiter, error)

        producer = self._producer
        if producer is None:  # discarded after a fatal error meanwhile
            raise KafkaUnavailable("the Kafka producer was reset; retry")
        try:
            producer.produce(self.topic, value=value, key=key, timestamp=timestamp_ms,
                             partition=ANY_PARTITION if partition is None else partition, on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:  # local queue full, or the producer is failing
            if isinstance(exc, KafkaException) and exc.args and exc.args[0].fatal():
                self._discard()
            raise KafkaUnavailable(str(exc)) from None
        try:
            await asyncio.wait_for(waiter, timeout=self.ack_timeout_s + 1)
        except asyncio.TimeoutError:
            raise KafkaUnavailable("no acknowledgement from Kafka in time") from None
        self.last_ack_monotonic = time.monotonic()

    def _discard(self) -> None:
        """After a fatal error (an idempotent producer fenced by a broker that lost its state, say)
        librdkafka refuses every record: drop this producer; the next send builds a new one."""
        with self._lock:
            log.warning("Kafka producer hit a fatal error; a new one will be created")
            self._producer = None
            self._closing.set()
            self._closing = threading.Event()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
            self._closing.set()


def _resolve(waiter: asyncio.Future, error: KafkaError | None) -> None:
    if waiter.done():
        return
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(KafkaUnavailable(f"Kafka did not acknowledge: {error.str()}"))
