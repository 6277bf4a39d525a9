"""validate's scan split over workers: the merged figures are the ones one process reading every
partition computes, retries whose copies sit in different workers' partitions included."""

from __future__ import annotations

import json
import random

from streamctl.kafka_access import KafkaAccess
from streamctl.pipeline.contract import format_event_time
from streamctl.topic_scan import PartitionTally, ScanSpec, TallyMerge, worker_count

PARTITIONS = [0, 1, 2, 3]
WINDOW_MS, TOLERANCE_MS, HORIZON_MS = 10_000, 499, 60_000
T0 = 1_795_000_000_000


def spec(partitions, fingerprints: bool) -> ScanSpec:
    return ScanSpec(KafkaAccess("unused:9092"), "t", tuple(partitions), WINDOW_MS, TOLERANCE_MS, HORIZON_MS,
                    fingerprints)


def topic(seed: int) -> dict[int, list[tuple[bytes, int]]]:
    """Records per partition, in offset order: ids with up to four copies anywhere in the topic, at
    times that put copies inside and outside the horizon, some stated off their append time."""
    rng = random.Random(seed)
    partitions: dict[int, list[tuple[bytes, int]]] = {p: [] for p in PARTITIONS}
    appended = {p: T0 for p in PARTITIONS}
    for n in range(400):
        for _ in range(rng.choice((1, 1, 2, 3, 4))):
            p = rng.choice(PARTITIONS)
            appended[p] += rng.choice((1, 7, 400, 30_000, 70_000))
            stated = appended[p] + rng.choice((0, -300, 300, -2_000))
            record = {"transaction_id": f"id-{n}", "product_category": rng.choice("AB"), "product_brand": "b",
                      "payment_method": "pix", "currency": "BRL", "product_quantity": rng.randint(1, 5),
                      "total_amount": rng.choice((1.5, 20.25, 3)), "transaction_date": format_event_time(stated)}
            partitions[p].append((json.dumps(record).encode(), appended[p]))
        if n % 50 == 0:
            p = rng.choice(PARTITIONS)
            partitions[p].append((b"not json", appended[p]))
    return partitions


def read(tally: PartitionTally, records: dict[int, list[tuple[bytes, int]]], done: dict[int, int], upto: int) -> None:
    """Read each of the tally's partitions from where it stopped (`done`) up to offset `upto`."""
    for p in tally.spec.partitions:
        for offset in range(done.get(p, 0), min(upto, len(records[p]))):
            tally.add(p, offset, *records[p][offset])
        done[p] = min(upto, len(records[p]))


def scan(records, shares: list[list[int]], steps: tuple[int, ...]) -> TallyMerge:
    """Read the topic in `steps` (records per partition so far), as validate's advances do."""
    tallies = [PartitionTally(spec(share, fingerprints=len(shares) > 1)) for share in shares]
    done: list[dict[int, int]] = [{} for _ in tallies]
    merge = TallyMerge(WINDOW_MS, HORIZON_MS, PARTITIONS)
    for upto in steps:
        for tally, offsets in zip(tallies, done, strict=True):
            read(tally, records, offsets, upto)
        parts = [tally.report() for tally in tallies]
        newly_shared = merge.newly_shared(parts)
        groups = [tally.groups(newly_shared) for tally in tallies] if merge.any_shared else []
        merge.merge(parts, groups)
    return merge


def figures(merge: TallyMerge):
    return ({key: (f.transaction_count, f.items_sold, f.revenue) for key, f in merge.expected.items()},
            merge.set_aside(), merge.duplicates_dropped, merge.records, merge.transactions,
            merge.partition_high_ms)


def test_workers_merged_count_what_one_process_counts():
    for seed in range(5):
        records = topic(seed)
        one = figures(scan(records, [PARTITIONS], (10**6,)))
        assert one[2] > 0  # the topic holds retries, some across partitions
        for shares in ([[0, 2], [1, 3]], [[0], [1], [2], [3]], [[0, 1, 2], [3]]):
            assert figures(scan(records, shares, (10**6,))) == one, (seed, shares)
            assert figures(scan(records, shares, (3, 40, 41, 90, 10**6))) == one, (seed, shares, "in steps")


def test_without_the_merge_copies_in_two_workers_would_both_count():
    """The merge is what makes the split exact: summing the workers' own decisions counts more."""
    records = topic(1)
    one = scan(records, [PARTITIONS], (10**6,))
    tallies = [PartitionTally(spec(share, fingerprints=False)) for share in ([0, 2], [1, 3])]
    for tally in tallies:
        read(tally, records, {}, 10**6)
    unmerged = TallyMerge(WINDOW_MS, HORIZON_MS, PARTITIONS)
    unmerged.merge([tally.report() for tally in tallies], [])
    assert unmerged.duplicates_dropped < one.duplicates_dropped
    assert sum(f.transaction_count for f in unmerged.expected.values()) > \
        sum(f.transaction_count for f in one.expected.values())


def test_one_worker_per_core_and_no_more_than_partitions():
    assert worker_count(4, cores=2) == 2
    assert worker_count(1, cores=8) == 1
    assert worker_count(3, cores=8) == 3
    assert worker_count(64, cores=64) == 8
