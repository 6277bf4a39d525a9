from __future__ import annotations

from decimal import Decimal

import pytest

from streamctl.errors import ConfigError
from streamctl.load import LoadPlan, parse_duration, read_history
from streamctl.pipeline.windows import WindowFigures, WindowKey
from streamctl.validate import Row, compare

W = 10_000


def key(start, category="Books"):
    return WindowKey(start, category, "Nike", "Pix", "BRL")


def test_compare_classifies_matched_missing_extra_different_and_pending():
    expected = {key(0): WindowFigures(2, 3, Decimal("20.50")), key(W): WindowFigures(1, 1, Decimal("5.00")),
                key(2 * W): WindowFigures(1, 1, Decimal("7.00")), key(9 * W): WindowFigures(1, 1, Decimal("1.00"))}
    actual = {key(0): Row(2, 3, Decimal("20.5"), Decimal("10.25")),  # equal numerically
              key(2 * W): Row(1, 1, Decimal("7.01"), Decimal("7.01")),
              key(3 * W, "Toys"): Row(1, 1, Decimal("1"), Decimal("1"))}
    expected = {k: Row.expected(f) for k, f in expected.items()}
    report = compare("postgres", expected, actual, settled=lambda k: k.window_start_ms < 5 * W)
    assert report.matched == 1
    assert [m["window_start"] for m in report.missing] == ["1970-01-01T00:00:10.000Z"]
    assert report.different[0]["expected"]["revenue"] == "7.00"
    assert report.different[0]["actual"]["revenue"] == "7.01"
    assert report.extra[0]["category"] == "Toys"
    assert not report.exact


def test_unsettled_windows_are_not_compared():
    expected = {key(9 * W): Row.expected(WindowFigures(1, 1, Decimal("1.00")))}
    assert compare("es", expected, {}, settled=lambda k: False).exact


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("2m", 120), ("1h", 3600), ("15", 15)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "two minutes", "5d", "-3s"])
def test_bad_durations(text):
    with pytest.raises(ConfigError):
        parse_duration(text)


def test_load_plan_rejects_bad_values():
    with pytest.raises(ConfigError, match="profile"):
        LoadPlan("http://x", 1, 1, 1, profile="turbo").validate()
    with pytest.raises(ConfigError):
        LoadPlan("http://x", 0, 1, 1).validate()


def test_history_reader_takes_the_last_aggregated_row(tmp_path):
    header = ("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,"
              "100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,"
              "Total Min Response Time,Total Max Response Time,Total Average Content Size")
    rows = ["1,5,,Aggregated,10.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0,0,0,0,0",
            "2,10,POST,/transaction,99,0,1,1,1,1,1,1,1,1,1,1,1,5,0,1,1,1,1,1",
            "2,10,,Aggregated,120.5,1.5,12,13,14,15,16,40,50,60,70,80,90,240,3,12,13,1,90,50"]
    path = tmp_path / "h.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    snap = read_history(path, 0.0)
    assert (snap.users, snap.rps, snap.requests, snap.failures, snap.p95_ms, snap.p99_ms) == (10, 120.5, 240, 3, 40,
                                                                                              60)
    assert snap.failure_ratio == pytest.approx(3 / 240)
    assert read_history(tmp_path / "missing.csv", 0.0) is None


def test_a_sink_row_beyond_the_watermark_is_not_judged_so_it_is_pending():
    from streamctl.validate import unjudged_windows

    expected = {key(0): Row.expected(WindowFigures(1, 1, Decimal("1.00")))}
    postgres = {key(0): Row(1, 1, Decimal("1.00"), Decimal("1.00")),
                key(50 * W, "Future"): Row(1, 1, Decimal("1.00"), Decimal("1.00"))}  # no record in the topic
    settled = lambda start: start < 5 * W  # noqa: E731
    assert unjudged_windows([expected, postgres, {}], [{}, {7 * W: object()}], settled) == [7 * W, 50 * W]
    assert unjudged_windows([expected], [{}], settled) == []
