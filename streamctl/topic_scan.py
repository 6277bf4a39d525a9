"""Reading the transactions topic for `validate`: every record, the job's rules applied in Python.

The per-record rules were 80% of a scan on one core (cProfile), so the partitions are split over
worker processes, at most one per core and one per partition. Each worker reads its partitions and
keeps their figures; the parent adds them up. A retry is counted once per transaction id, and the
API keys records by transaction id, so its retries share a partition, but any writer can put copies
of one id in two partitions. So each worker reports a fingerprint of every id it sees first, and for
an id more than one worker holds, the parent takes back each worker's own decision and decides on
all its copies together, as one process would have.

confluent-kafka (librdkafka) reads here: kafka-python scanned 8,500 records/s, which would make a
million-record topic take two minutes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import traceback
import uuid
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import orjson

from streamctl.errors import ServiceUnavailable
from streamctl.kafka_access import KafkaAccess
from streamctl.kafka_info import probe
from streamctl.pipeline.windows import (
    Copy,
    ExpectedWindows,
    WindowFigures,
    WindowKey,
    as_job_reads,
    copy_order,
    counted_copy,
    event_time_ms,
    topic_position,
    window_start,
)

MAX_WORKERS = 8
WORKER_TIMEOUT_S = 600  # one advance of one worker; Kafka stalls end it sooner (IDLE_POLLS)
STOP_WAIT_S = 2  # for all the workers to end once closed (an idle one ends at once); then they are killed
IDLE_POLLS = 30  # one-second polls without a record before the end offsets: Kafka stopped delivering


def decode_record(raw: bytes | None) -> Any:
    """A record's value as the job's JSON format reads it, or None when it reads no row.

    orjson first (fast); where it refuses, the stdlib decoder, which like Flink's parser takes
    escaped unpaired surrogates; neither takes NaN or invalid UTF-8."""
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError):
        return None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# An id's fingerprint is its str hash: computed in C, cached on the string, and the same in every
# worker, though Python salts it per interpreter, because the workers share one PYTHONHASHSEED.
# Two ids with one fingerprint only cost a needless look at their copies, never a wrong count.
fingerprint = hash


@dataclass(frozen=True)
class ScanSpec:
    kafka: KafkaAccess
    topic: str
    partitions: tuple[int, ...]
    window_ms: int
    tolerance_ms: int
    horizon_ms: int
    fingerprints: bool  # report new ids' fingerprints: only needed when other workers read other partitions


@dataclass
class PartScan:
    """What one worker has read so far from its partitions."""

    records: int = 0
    heartbeats: int = 0
    transactions: int = 0
    newest_heartbeat_ms: int | None = None
    partition_high_ms: dict[int, int] = field(default_factory=dict)
    rejects: dict[int, int] = field(default_factory=dict)  # window start -> records the job cannot count
    figures: dict[WindowKey, WindowFigures] = field(default_factory=dict)
    duplicates: dict[int, int] = field(default_factory=dict)
    new_ids: bytes = b""  # array('q') of the fingerprints of ids first seen in this advance


class PartitionTally:
    """The job's rules applied to the records of some partitions, in each partition's order."""

    def __init__(self, spec: ScanSpec) -> None:
        self.spec = spec
        self.part = PartScan()
        self.windows = ExpectedWindows(spec.window_ms, spec.horizon_ms)
        self._new_ids: list[str] = []  # ids first seen since the last report
        self._watched: dict[int, set[str]] = {}  # fingerprint held by other workers too -> ids with it

    def add(self, partition: int, offset: int, raw: bytes | None, appended_ms: int) -> None:
        part = self.part
        part.records += 1
        value = decode_record(raw)
        readable = isinstance(value, dict)
        ts = event_time_ms(value, appended_ms, self.spec.tolerance_ms) if readable else appended_ms
        if ts > part.partition_high_ms.get(partition, -1):
            part.partition_high_ms[partition] = ts
        job = as_job_reads(value, raw) if readable else None
        if job is not None and job.heartbeat:
            part.heartbeats += 1
            if part.newest_heartbeat_ms is None or appended_ms > part.newest_heartbeat_ms:
                part.newest_heartbeat_ms = appended_ms
            return
        counted = counted_copy(job, ts, topic_position(partition, offset), self.spec.window_ms) if job else None
        if counted is None:
            start = window_start(ts, self.spec.window_ms)
            part.rejects[start] = part.rejects.get(start, 0) + 1
            return
        part.transactions += 1
        transaction_id, copy = counted
        if self.windows.add(transaction_id, copy) and self.spec.fingerprints:
            self._new_ids.append(transaction_id)

    def report(self) -> PartScan:
        """What was read so far, with the fingerprints of the ids first seen since the last report."""
        self.part.figures, self.part.duplicates = self.windows.figures, self.windows.duplicates
        marks = array("q", map(fingerprint, self._new_ids))
        if self._watched:
            for transaction_id, mark in zip(self._new_ids, marks, strict=True):
                if mark in self._watched:
                    self._watched[mark].add(transaction_id)
        self.part.new_ids, self._new_ids = marks.tobytes(), []
        return self.part

    def groups(self, newly_shared: bytes) -> dict[str, list[Copy]]:
        """The copies held here of every id whose fingerprint other workers hold too."""
        new: dict[int, set[str]] = {mark: set() for mark in array("q", newly_shared) if mark not in self._watched}
        if new:  # one pass over the ids held here, only when the parent names new shared fingerprints
            for transaction_id in self.windows.ids():
                ids = new.get(fingerprint(transaction_id))
                if ids is not None:
                    ids.add(transaction_id)
            self._watched.update(new)
        return {tid: self.windows.group(tid) for ids in self._watched.values() for tid in ids}


class PartitionReader:
    """Reads some partitions of the topic incrementally: each advance() reads to the current end offsets."""

    def __init__(self, spec: ScanSpec) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self.spec = spec
        self.tally = PartitionTally(spec)
        self._consumer = Consumer({
            **spec.kafka.librdkafka(), "group.id": f"streamctl-validate-{uuid.uuid4().hex}",
            "enable.auto.commit": False, "enable.auto.offset.store": False, "log_level": 3,
            "fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": 16 * 1024 * 1024,
            "queued.max.messages.kbytes": 256 * 1024,
        })
        self._next = {p: 0 for p in spec.partitions}  # next offset to read per partition
        self._TopicPartition = TopicPartition
        self._consumer.assign([TopicPartition(spec.topic, p, OFFSET_BEGINNING) for p in spec.partitions])

    def advance(self) -> PartScan:
        end = {}
        for p in self.spec.partitions:
            low, high = self._consumer.get_watermark_offsets(self._TopicPartition(self.spec.topic, p), timeout=10)
            end[p] = high
            self._next[p] = max(self._next[p], low)
        add = self.tally.add
        idle_polls = 0
        while any(self._next[p] < end[p] for p in self.spec.partitions):
            messages = self._consumer.consume(num_messages=20000, timeout=1.0)
            progressed = False
            for message in messages:
                if message.error() is not None:
                    continue
                partition, offset = message.partition(), message.offset()
                # A record past this look's end offsets is read all the same: the consumer will not hand
                # it over again, and the next look's end lies beyond it (skipping it lost it for good, and a
                # look whose end the consumer had already passed waited forever).
                if partition is None or offset is None or offset < self._next[partition]:
                    continue
                self._next[partition] = offset + 1
                progressed = True
                add(partition, offset, message.value(), message.timestamp()[1])
            if progressed:
                idle_polls = 0
                continue
            # An offset that is no record (a transaction marker, a compacted gap) never arrives as a message:
            # the consumer's position says how far it has read. Only reading counts as progress, so a poll
            # that brings errors or records past the end offsets alone cannot keep this loop going forever.
            for position in self._consumer.position([self._TopicPartition(self.spec.topic, p)
                                                     for p in self.spec.partitions]):
                if position.offset >= 0:
                    self._next[position.partition] = max(self._next[position.partition],
                                                         min(position.offset, end[position.partition]))
            idle_polls += 1
            if idle_polls > IDLE_POLLS and any(self._next[p] < end[p] for p in self.spec.partitions):
                raise ServiceUnavailable(f"Kafka stopped delivering {self.spec.topic} before its end offsets",
                                         hint="check `streamctl status`")
        return self.tally.report()

    def groups(self, newly_shared: bytes) -> dict[str, list[Copy]]:
        return self.tally.groups(newly_shared)

    def close(self) -> None:
        self._consumer.close()


def serve(fd: int) -> None:
    """A worker process: reads its spec, then answers the parent's requests until it says close or
    goes away. Ctrl-C is the parent's to handle: it closes the connection and stops the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    reader = None
    try:
        reader = PartitionReader(conn.recv())
        conn.send(("ok", None))
        while True:
            request, argument = conn.recv()
            if request == "close":
                break
            try:
                answer = reader.advance() if request == "advance" else reader.groups(argument)
            except ServiceUnavailable as error:
                conn.send(("unavailable", (error.message, error.hint)))
            else:
                conn.send(("ok", answer))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the parent went away or stopped listening: nobody waits for an answer
    except ServiceUnavailable as error:
        _last_word(conn, ("unavailable", (error.message, error.hint)))
    except BaseException:  # noqa: BLE001 - a bug: the parent shows it instead of waiting for an answer
        _last_word(conn, ("crashed", traceback.format_exc()))
    finally:
        if reader is not None:
            reader.close()


def _last_word(conn: Connection, message: tuple) -> None:
    try:
        conn.send(message)
    except OSError:
        pass


class _InProcess:
    """One reader in the caller's process: no worker is worth starting for one partition or one core."""

    def __init__(self, spec: ScanSpec) -> None:
        self._reader = PartitionReader(spec)
        self._answer: Any = None

    def request(self, name: str, argument: Any = None) -> None:
        self._answer = self._reader.advance() if name == "advance" else self._reader.groups(argument)

    def answer(self) -> Any:
        return self._answer

    def close(self) -> None:
        self._reader.close()

    def wait(self, deadline: float) -> None:
        pass


class _Worker:
    """A reader in a process of its own: a fresh interpreter (not a fork of a caller that may run
    threads, and no re-import of the caller's main module), spoken to over a socket pair."""

    def __init__(self, spec: ScanSpec, hash_seed: int) -> None:
        self.name = f"validate worker for partition(s) {', '.join(map(str, spec.partitions))}"
        ours, theirs = socket.socketpair()
        with theirs:
            try:
                # -P: import streamctl as the caller did, not from a streamctl/ in the working directory
                self._process = subprocess.Popen(
                    [sys.executable, "-P", "-c", f"from streamctl.topic_scan import serve; serve({theirs.fileno()})"],
                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                    env={**os.environ, "PYTHONHASHSEED": str(hash_seed)})  # one salt: the same fingerprints
            except BaseException:
                ours.close()
                raise
        self._conn = Connection(ours.detach())
        try:
            self._conn.send(spec)  # its first answer says the consumer is assigned
        except BaseException:
            self.close()
            self.wait(time.monotonic())
            raise

    def request(self, name: str, argument: Any = None) -> None:
        self._conn.send((name, argument))

    def answer(self) -> Any:
        if not self._conn.poll(WORKER_TIMEOUT_S):
            raise ServiceUnavailable(f"the {self.name} gave no answer in {WORKER_TIMEOUT_S} s",
                                     hint="run validate again")
        try:
            status, payload = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the {self.name} ended (exit code {self._process.poll()})") from None
        if status == "unavailable":
            raise ServiceUnavailable(payload[0], hint=payload[1])
        if status == "crashed":
            raise RuntimeError(f"the {self.name} failed:\n{payload}")
        return payload

    def close(self) -> None:
        """Ask the worker to stop, and close this end at once: a worker still sending an answer
        nobody will read (the first one holds every id's fingerprint) gets a broken pipe and ends."""
        try:
            self._conn.send(("close", None))
        except OSError:
            pass
        self._conn.close()

    def wait(self, deadline: float) -> None:
        """Wait for the worker to end until `deadline` (monotonic), then kill it: one still reading
        its partitions finds out only when it answers."""
        try:
            self._process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def worker_count(partitions: int, cores: int | None = None) -> int:
    return max(1, min(partitions, cores or _usable_cores(), MAX_WORKERS))


def _usable_cores() -> int:
    """The cores this process may run on (a container's CPU set), not the machine's."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


class TallyMerge:
    """The figures of the whole topic from the reports of the workers that read its partitions."""

    def __init__(self, window_ms: int, horizon_ms: int, partitions: list[int]) -> None:
        self.window_ms, self.horizon_ms, self.partitions = window_ms, horizon_ms, partitions
        self._owner: dict[int, int] = {}  # id fingerprint -> the first worker that reported it
        self._shared: set[int] = set()  # fingerprints more than one worker reported
        self.merge([PartScan()], [])

    def newly_shared(self, parts: list[PartScan]) -> bytes:
        """The fingerprints these reports show in a second worker for the first time."""
        new = array("q")
        for index, part in enumerate(parts):
            for mark in array("q", part.new_ids):
                if self._owner.setdefault(mark, index) != index and mark not in self._shared:
                    self._shared.add(mark)
                    new.append(mark)
        return new.tobytes()

    @property
    def any_shared(self) -> bool:
        return bool(self._shared)

    def merge(self, parts: list[PartScan], groups: list[dict[str, list[Copy]]]) -> None:
        """Add up the reports; `groups`: each worker's copies of the ids whose fingerprint is shared."""
        self.records = sum(p.records for p in parts)
        self.heartbeats = sum(p.heartbeats for p in parts)
        self.transactions = sum(p.transactions for p in parts)
        beats = [p.newest_heartbeat_ms for p in parts if p.newest_heartbeat_ms is not None]
        self.newest_heartbeat_ms = max(beats) if beats else None
        self.partition_high_ms = {p: ms for part in parts for p, ms in part.partition_high_ms.items()}
        self.rejects = _sum_counts(p.rejects for p in parts)
        if len(parts) == 1:
            self._figures, self._duplicates = parts[0].figures, parts[0].duplicates
            return
        merged = ExpectedWindows(self.window_ms, self.horizon_ms)
        for part in parts:
            for key, figures in part.figures.items():
                total = merged.figures.setdefault(key, WindowFigures())
                total.transaction_count += figures.transaction_count
                total.items_sold += figures.items_sold
                total.revenue += figures.revenue
        merged.duplicates = _sum_counts(p.duplicates for p in parts)
        held: dict[str, list[list[Copy]]] = {}
        for answer in groups:
            for transaction_id, group in answer.items():
                if group:
                    held.setdefault(transaction_id, []).append(group)
        for shares in held.values():
            if len(shares) > 1:  # each worker decided on its own copies: decide on all of them at once
                for share in shares:
                    merged.tally(share, -1)
                merged.tally(sorted((c for share in shares for c in share), key=copy_order), 1)
        self._figures, self._duplicates = merged.figures, merged.duplicates

    @property
    def expected(self) -> dict[WindowKey, WindowFigures]:
        return self._figures

    @property
    def duplicates_dropped(self) -> int:
        return sum(self._duplicates.values())

    def set_aside(self) -> dict[int, tuple[int, int]]:
        """Per window: records the job cannot count, retries it dropped."""
        return {start: (self.rejects.get(start, 0), self._duplicates.get(start, 0))
                for start in self.rejects.keys() | self._duplicates.keys()}

    def silent_partitions(self) -> list[int]:
        return [p for p in self.partitions if p not in self.partition_high_ms]

    def watermark_ms(self, delay_ms: int) -> int | None:
        if self.silent_partitions():
            return None  # a partition with no record yet holds the job's watermark back
        return min(self.partition_high_ms.values()) - delay_ms


class TopicScanner(TallyMerge):
    """The whole topic, read by one worker per share of its partitions; each advance() reads on to
    the current end offsets."""

    def __init__(self, kafka: KafkaAccess, topic: str, window_ms: int, tolerance_ms: int, horizon_ms: int,
                 workers: int | None = None) -> None:
        self.topic = topic
        super().__init__(window_ms, horizon_ms, _partitions(kafka, topic))
        count = workers or worker_count(len(self.partitions))
        self.workers = count
        hash_seed = random.randint(1, 2**32 - 1)
        self._workers: list[_InProcess | _Worker] = []
        try:
            for i in range(count):
                spec = ScanSpec(kafka, topic, tuple(self.partitions[i::count]), window_ms, tolerance_ms, horizon_ms,
                                fingerprints=count > 1)
                self._workers.append(_InProcess(spec) if count == 1 else _Worker(spec, hash_seed))
            for worker in self._workers:  # started together, then each one's consumer is ready
                worker.answer()
        except BaseException:
            self.close()
            raise

    def advance(self) -> None:
        for worker in self._workers:
            worker.request("advance")
        parts = [worker.answer() for worker in self._workers]
        groups = []
        newly_shared = self.newly_shared(parts)
        if self.any_shared:
            for worker in self._workers:
                worker.request("groups", newly_shared)
            groups = [worker.answer() for worker in self._workers]
        self.merge(parts, groups)

    def close(self) -> None:
        for worker in self._workers:
            worker.close()
        deadline = time.monotonic() + STOP_WAIT_S
        for worker in self._workers:
            worker.wait(deadline)
        self._workers = []


def _sum_counts(counts) -> dict[int, int]:
    total: dict[int, int] = {}
    for part in counts:
        for start, n in part.items():
            total[start] = total.get(start, 0) + n
    return {start: n for start, n in total.items() if n}


def _partitions(kafka: KafkaAccess, topic: str) -> list[int]:
    from confluent_kafka import KafkaException

    try:
        with probe(kafka, topic, f"streamctl-validate-{uuid.uuid4().hex}", timeout_s=5, log_level=3) as (_, partitions):
            pass
    except KafkaException as exc:
        raise ServiceUnavailable(f"Kafka is unreachable at {kafka.bootstrap} ({exc.args[0].str()})",
                                 hint="start the stack with `streamctl up`") from None
    if not partitions:
        raise ServiceUnavailable(f"topic {topic!r} does not exist", hint="run `streamctl up` first")
    return partitions
