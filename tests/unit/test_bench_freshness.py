from __future__ import annotations

import pytest

from streamctl.bench.freshness import WindowSeen, percentile


@pytest.mark.parametrize("values, fraction, expected", [
    ([1.0], 0.95, 1.0),
    ([3.0, 1.0, 2.0], 0.5, 2.0),
    ([float(v) for v in range(1, 21)], 0.95, 19.0),  # nearest rank: ceil(0.95 * 20) = 19
    ([float(v) for v in range(1, 11)], 0.95, 10.0),
])
def test_nearest_rank_percentile(values, fraction, expected):
    assert percentile(values, fraction) == expected


def test_a_window_counts_once_both_sinks_show_it():
    seen = WindowSeen(window_end_ms=60_000, postgres_ms=63_000)
    assert seen.both_ms() is None
    seen.elasticsearch_ms = 62_500
    assert seen.both_ms() == 63_000

