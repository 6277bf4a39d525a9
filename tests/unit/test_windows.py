from __future__ import annotations

import json
from decimal import Decimal

import pytest

from streamctl.pipeline.windows import (
    ExpectedWindows, WindowFigures, WindowKey, aggregate, as_job_reads, countable, event_time_ms, stated_time_ms,
    storable, window_start,
)

MINUTE = 60_000
T = 1795600830000  # 2026-11-25T10:00:30.000Z
TOL = 1499


def record(category="Books", brand="Nike", payment="Pix", quantity=2, total=20.5, date="2026-11-25T10:00:30.000Z",
           tid="t-1", currency="BRL"):
    return {"transaction_id": tid, "product_category": category, "product_brand": brand, "payment_method": payment,
            "currency": currency, "product_quantity": quantity, "total_amount": total, "transaction_date": date}


def test_window_start_is_aligned():
    assert window_start(0, MINUTE) == 0
    assert window_start(MINUTE - 1, MINUTE) == 0
    assert window_start(MINUTE, MINUTE) == MINUTE
    assert window_start(1795633515746, MINUTE) == 1795633500000


def test_aggregate_counts_items_and_exact_revenue():
    records = [(record(total=0.1, tid="a"), T), (record(total=0.2, tid="b"), T),
               (record(quantity=3, total=370.35, tid="c"), T),
               (record(category="Toys", date="2026-11-25T10:01:00.000Z", tid="d"), T + 30_000)]
    windows = aggregate(records, MINUTE)
    books = windows[WindowKey(1795600800000, "Books", "Nike", "Pix", "BRL")]
    assert books.transaction_count == 3
    assert books.items_sold == 7
    assert books.revenue == Decimal("370.65")  # not 370.65000000000003
    assert books.avg_ticket == Decimal("123.55")
    toys = windows[WindowKey(1795600860000, "Toys", "Nike", "Pix", "BRL")]
    assert toys.transaction_count == 1


@pytest.mark.parametrize("date", [
    "garbage", "2026-11-25T10:00:30Z", "2026-11-25T10:00:30.1Z", "2026-11-25 10:00:30.000", "2026-11-25T10:00:30.000",
    "2026-02-30T10:00:30.000Z", "2026-11-25T24:00:00.000Z", "2026-11-25T10:00:60.000Z", " 2026-11-25T10:00:30.000Z",
    "２０２６-11-25T10:00:30.000Z", "2026-11-25t10:00:30.000z", 1795600830000, None,
])
def test_only_the_canonical_form_of_a_real_instant_is_an_event_time(date):
    """The set the job's DATE_FORMAT(TO_TIMESTAMP(d)) = d accepts (measured on Flink 1.20)."""
    assert stated_time_ms(date) is None
    assert event_time_ms(record(date=date), T + 7, TOL) == T + 7


def test_a_stated_time_beyond_the_tolerance_of_the_append_time_gives_way_to_it():
    assert stated_time_ms("2026-11-25T10:00:30.000Z") == T
    assert event_time_ms(record(), T + TOL, TOL) == T
    assert event_time_ms(record(), T - TOL, TOL) == T
    assert event_time_ms(record(), T + TOL + 1, TOL) == T + TOL + 1
    assert event_time_ms(record(date="1999-01-01T00:00:00.000Z"), T, TOL) == T


@pytest.mark.parametrize("text, ok", [
    ("Books", True), ("a|b", True), ("😀" * 256, True), ("😀" * 257, False), ("x" * 256, True), ("x" * 257, False),
    ("", False), (None, False), ("Bo\x00oks", False), ("tab\there", False), ("\x7f", False), ("\x85", False),
    ("\ud800", False), ("\udfff x", False), ("Ünïcödé", True),
])
def test_storable_text_is_what_every_sink_can_hold(text, ok):
    assert storable(text) is ok


def test_countable_matches_the_jobs_filter():
    assert countable(record())
    assert not countable({"heartbeat": True, "transaction_date": "2026-11-25T10:00:00.000Z"})
    assert not countable(record(quantity=0))
    assert not countable(record(quantity=1_000_001))
    assert not countable(record(total=0))
    assert not countable(record(category=None))
    assert not countable(record(category="Bo\x00oks"))
    assert not countable(record(tid=None))
    assert not countable(record(currency="BRLX"))
    assert not countable(record(currency="brl"))
    assert not countable(record(currency="BR\n"))
    assert not countable("not an object")
    assert not countable(record(quantity=True))


def test_avg_ticket_rounds_half_up():
    figures = WindowFigures(transaction_count=8, items_sold=8, revenue=Decimal("0.20"))
    assert figures.avg_ticket == Decimal("0.03")  # 0.025 -> 0.03


def test_avg_ticket_rounds_twice_like_the_job():
    """SUM(DECIMAL(38, 2)) / COUNT is DECIMAL(38, 6) in Flink, rounded half up, then cast to (14, 2):
    0.00499999... becomes 0.005000 and then 0.01, where one exact rounding would give 0.00."""
    figures = WindowFigures(transaction_count=200_001, items_sold=1, revenue=Decimal("1000.00"))
    assert figures.avg_ticket == Decimal("0.01")


def test_the_largest_window_sum_keeps_every_cent():
    figures = WindowFigures(transaction_count=10**9, items_sold=1, revenue=Decimal("999999999999.99") * 10**9)
    assert figures.avg_ticket == Decimal("999999999999.99")


def copy(ts, position, key=None, quantity=1, total=Decimal("1.00")):
    return (ts, position, key or WindowKey(window_start(ts, MINUTE), "c", "b", "p", "BRL"), quantity, total)


def test_a_retry_within_the_horizon_is_counted_once_in_the_first_copys_window():
    windows = ExpectedWindows(MINUTE, 10 * MINUTE)
    windows.add("t", copy(T, 1))
    windows.add("t", copy(T + 2 * MINUTE, 2))  # after the first copy's window closed
    assert [(k.window_start_ms, f.transaction_count) for k, f in windows.figures.items()] == [(window_start(T, MINUTE), 1)]
    assert windows.duplicates == {window_start(T + 2 * MINUTE, MINUTE): 1}


def test_copies_at_the_same_time_keep_the_one_earlier_in_the_topic():
    windows = ExpectedWindows(MINUTE, 10 * MINUTE)
    windows.add("t", copy(T, 9, quantity=2))
    windows.add("t", copy(T, 5, quantity=3))  # read later, but earlier in the topic
    (figures,) = windows.figures.values()
    assert (figures.transaction_count, figures.items_sold, windows.duplicates_dropped) == (1, 3, 1)


def test_a_copy_read_later_with_an_earlier_time_becomes_the_first():
    windows = ExpectedWindows(MINUTE, 10 * MINUTE)
    windows.add("t", copy(T + MINUTE, 1))
    windows.add("t", copy(T, 2))
    (key,) = windows.figures
    assert key.window_start_ms == window_start(T, MINUTE)
    assert windows.duplicates == {window_start(T + MINUTE, MINUTE): 1}


def test_past_the_horizon_a_copy_counts_again_and_the_horizon_runs_from_the_previous_copy():
    windows = ExpectedWindows(MINUTE, 10 * MINUTE)
    windows.add("t", copy(T, 1))
    windows.add("t", copy(T + 10 * MINUTE, 2))  # exactly the horizon: still a retry
    windows.add("t", copy(T + 20 * MINUTE, 3))  # within the horizon of the previous (dropped) copy
    windows.add("t", copy(T + 30 * MINUTE + 1, 4))  # beyond it: counted again
    assert sum(f.transaction_count for f in windows.figures.values()) == 2
    assert windows.duplicates_dropped == 2


def test_aggregate_drops_retries():
    records = [(record(tid="a"), T), (record(tid="a", date="2026-11-25T10:02:30.000Z"), T + 2 * MINUTE),
               (record(tid="b"), T)]
    (figures,) = aggregate(records, MINUTE).values()
    assert figures.transaction_count == 2


# What Flink 1.20's JSON format was measured to do with off-contract records written straight to
# the topic (a real job, rows read back from PostgreSQL): the mirror must read them the same way.
def job(**fields):
    base = {"transaction_id": "t", "product_category": "c", "product_brand": "b", "payment_method": "Pix", "currency": "BRL",
            "product_quantity": 1, "total_amount": 10.0}
    value = {**base, **fields}
    return as_job_reads(value, json.dumps(value).encode())


def job_literal(raw: str):
    return as_job_reads(json.loads(raw), raw.encode())


@pytest.mark.parametrize("brand, seen_by_flink", [
    (7, "7"), (True, "true"), ([1, 2], "[1,2]"), ({"a": 1, "b": [1, "x"]}, '{"a":1,"b":[1,"x"]}'),
    (0.1, "0.1"), (100.5, "100.5"),
])
def test_non_string_dimensions_become_their_json_text(brand, seen_by_flink):
    assert job(product_brand=brand).brand == seen_by_flink


@pytest.mark.parametrize("literal", ["1e2", "5.10", "5.0"])
def test_a_number_in_a_string_column_keeps_its_literal_text(literal):
    raw = '{"transaction_id":"t","product_category":"c","product_brand":%s,"payment_method":"Pix","currency":"BRL",' \
          '"product_quantity":1,"total_amount":10.0}' % literal
    assert job_literal(raw).brand == literal


@pytest.mark.parametrize("quantity, read", [
    (3, 3), (3.7, 3), ("3", 3), (" 4 ", 4), ("3.0", None), ("many", None), (True, None), (2**40, None), (None, None),
])
def test_quantity_is_read_like_flinks_int_column(quantity, read):
    assert job(product_quantity=quantity).quantity == read


@pytest.mark.parametrize("total, read", [
    (10.0, Decimal("10.00")), ("12.345", Decimal("12.35")), (" 12", Decimal("12.00")), ("1e2", Decimal("100.00")),
    (10.005, Decimal("10.01")), (1e15, None), ("1_000", None), ("NaN", None), (True, None), (30, Decimal("30.00")),
])
def test_total_is_read_like_flinks_decimal_14_2_column(total, read):
    assert job(total_amount=total).total == read


def test_a_long_total_literal_is_rounded_from_its_text_not_from_a_float():
    raw = '{"transaction_id":"t","product_category":"c","product_brand":"b","payment_method":"Pix","currency":"BRL",' \
          '"product_quantity":1,"total_amount":0.12499999999999999999}'
    assert job_literal(raw).total == Decimal("0.12")  # as a float it would be 0.125 -> 0.13


@pytest.mark.parametrize("heartbeat, read", [(True, True), ("TRUE", True), (1, False), ("yes", False), (None, False)])
def test_heartbeat_is_read_like_flinks_boolean_column(heartbeat, read):
    assert job(heartbeat=heartbeat).heartbeat is read


def test_unconvertible_fields_make_a_reject_not_a_dropped_record():
    record = job(product_quantity=True)
    assert record is not None and not record.countable
    assert as_job_reads([1, 2, 3]) is None and as_job_reads("not an object") is None
