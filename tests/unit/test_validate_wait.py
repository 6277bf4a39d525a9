"""Which windows `validate` judges, with the topic and the sinks as fixed data (the comparison itself is
in test_validate_compare.py; real topics and sinks in tests/integration): every closed window when all
of them match, else only those past the grace, so that a window still being written is pending, not
missing; `--wait` ends as soon as all match."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streamctl import validate as v
from streamctl.pipeline.windows import WindowFigures, WindowKey

WINDOW_MS = 5_000
WATERMARK_MS = 1_000_000  # the last window with transactions ended 2 s before it: inside the 5 s grace
LAST = WindowKey(WATERMARK_MS - 2_000 - WINDOW_MS, "books", "acme", "card", "EUR")
EARLIER = LAST._replace(window_start_ms=LAST.window_start_ms - 60_000)
FIGURES = {EARLIER: WindowFigures(3, 4, Decimal("30.00")), LAST: WindowFigures(2, 2, Decimal("19.98"))}


class Topic:
    """The scanner's answers for a topic whose last transactions fell in LAST."""

    topic, records, transactions, heartbeats, duplicates_dropped, rejects = "transactions", 9, 5, 4, 0, {}
    expected = FIGURES
    newest_heartbeat_ms = None

    def __init__(self, *args):
        pass

    def advance(self) -> None:
        pass

    def watermark_ms(self, delay_ms: int) -> int:
        return WATERMARK_MS

    def set_aside(self) -> dict:
        return {}

    def silent_partitions(self) -> list[int]:
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def sinks_hold_every_window(monkeypatch):
    rows = {key: v.Row.expected(figures) for key, figures in FIGURES.items()}
    monkeypatch.setattr(v, "TopicScanner", Topic)
    monkeypatch.setattr(v, "read_postgres", lambda endpoints: (dict(rows), {}))
    monkeypatch.setattr(v, "read_elasticsearch", lambda endpoints, index: (dict(rows), []))
    monkeypatch.setattr(v, "http_ok", lambda url, timeout: (True, ""))
    monkeypatch.setattr(v.time, "time", lambda: WATERMARK_MS / 1000)  # heartbeats are fresh


class Endpoints:
    kafka = None
    producer_url = "http://producer"


def plan(wait_s: float) -> v.ValidationPlan:
    return v.ValidationPlan("transactions", "sales", WINDOW_MS // 1000, 1, 499, 10, wait_s=wait_s)


def test_every_closed_window_is_judged_when_all_of_them_match(sinks_hold_every_window):
    result = v.validate(Endpoints(), plan(0))  # type: ignore[arg-type]
    assert result.pending_windows == [] and result.inconclusive == []
    assert [s.matched for s in result.sinks] == [2, 2, 0]  # LAST, 2 s past the watermark, judged too


def test_a_window_that_closed_within_the_grace_and_is_not_written_yet_is_pending_not_missing(
        sinks_hold_every_window, monkeypatch):
    rows = {EARLIER: v.Row.expected(FIGURES[EARLIER])}
    monkeypatch.setattr(v, "read_elasticsearch", lambda endpoints, index: (dict(rows), []))
    result = v.validate(Endpoints(), plan(0))  # type: ignore[arg-type]
    assert all(s.exact for s in result.sinks), "not called missing"
    assert [w["window_start"] for w in result.pending_windows] == [v.format_event_time(LAST.window_start_ms)]
    assert result.inconclusive


def test_a_settled_window_missing_from_a_sink_is_a_mismatch(sinks_hold_every_window, monkeypatch):
    rows = {LAST: v.Row.expected(FIGURES[LAST])}
    monkeypatch.setattr(v, "read_elasticsearch", lambda endpoints, index: (dict(rows), []))
    result = v.validate(Endpoints(), plan(0))  # type: ignore[arg-type]
    elastic = next(s for s in result.sinks if s.name == "elasticsearch")
    assert [m["window_start"] for m in elastic.missing] == [v.format_event_time(EARLIER.window_start_ms)]


def test_waiting_ends_as_soon_as_every_closed_window_matches(sinks_hold_every_window):
    result = v.validate(Endpoints(), plan(3))  # type: ignore[arg-type]
    assert result.pending_windows == [] and result.inconclusive == [] and all(s.exact for s in result.sinks)
    assert result.seconds < 3, "it ended when every window matched, not at the deadline"


def test_waiting_for_a_sink_that_never_writes_the_last_window_ends_pending_at_the_deadline(sinks_hold_every_window,
                                                                                          monkeypatch):
    rows = {EARLIER: v.Row.expected(FIGURES[EARLIER])}
    monkeypatch.setattr(v, "read_elasticsearch", lambda endpoints, index: (dict(rows), []))
    result = v.validate(Endpoints(), plan(1.5))  # type: ignore[arg-type]
    assert [w["window_start"] for w in result.pending_windows] == [v.format_event_time(LAST.window_start_ms)]
    assert result.inconclusive and all(s.exact for s in result.sinks)
