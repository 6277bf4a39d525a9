from __future__ import annotations

import json
from decimal import Decimal

import pytest

from streamctl.pipeline.windows import WindowFigures, WindowKey, aggregate, as_job_reads, countable, window_start

MINUTE = 60_000


def record(category="Books", brand="Nike", payment="Pix", quantity=2, total=20.5, date="2026-11-25T10:00:30.000Z"):
    return {"product_category": category, "product_brand": brand, "payment_method": payment, "currency": "BRL",
            "product_quantity": quantity, "total_amount": total, "transaction_date": date}


def test_window_start_is_aligned():
    assert window_start(0, MINUTE) == 0
    assert window_start(MINUTE - 1, MINUTE) == 0
    assert window_start(MINUTE, MINUTE) == MINUTE
    assert window_start(1795633515746, MINUTE) == 1795633500000


def test_aggregate_counts_items_and_exact_revenue():
    records = [(record(total=0.1), 0), (record(total=0.2), 0), (record(quantity=3, total=370.35), 0),
               (record(category="Toys", date="2026-11-25T10:01:00.000Z"), 0)]
    windows = aggregate(records, MINUTE)
    books = windows[WindowKey(1795600800000, "Books", "Nike", "Pix", "BRL")]
    assert books.transaction_count == 3
    assert books.items_sold == 7
    assert books.revenue == Decimal("370.65")  # not 370.65000000000003
    assert books.avg_ticket == Decimal("123.55")
    toys = windows[WindowKey(1795600860000, "Toys", "Nike", "Pix", "BRL")]
    assert toys.transaction_count == 1


def test_unreadable_date_falls_back_to_the_kafka_timestamp():
    windows = aggregate([(record(date="garbage"), 5 * MINUTE + 1)], MINUTE)
    (key,) = windows
    assert key.window_start_ms == 5 * MINUTE


def test_countable_matches_the_jobs_filter():
    assert countable(record())
    assert not countable({"heartbeat": True, "transaction_date": "2026-11-25T10:00:00.000Z"})
    assert not countable(record(quantity=0))
    assert not countable(record(total=0))
    assert not countable(record(category=None))
    assert not countable("not an object")
    assert not countable(record(quantity=True))


def test_avg_ticket_rounds_half_up():
    figures = WindowFigures(transaction_count=8, items_sold=8, revenue=Decimal("0.20"))
    assert figures.avg_ticket == Decimal("0.03")  # 0.025 -> 0.03
    assert WindowKey(1, "a", "b", "c", "BRL").doc_id() == "1|a|b|c|BRL"


# What Flink 1.20's JSON format was measured to do with off-contract records written straight to
# the topic (a real job, rows read back from PostgreSQL): the mirror must read them the same way.
def job(**fields):
    base = {"product_category": "c", "product_brand": "b", "payment_method": "Pix", "currency": "BRL",
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
    raw = '{"product_category":"c","product_brand":%s,"payment_method":"Pix","currency":"BRL",' \
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
    raw = '{"product_category":"c","product_brand":"b","payment_method":"Pix","currency":"BRL",' \
          '"product_quantity":1,"total_amount":0.12499999999999999999}'
    assert job_literal(raw).total == Decimal("0.12")  # as a float it would be 0.125 -> 0.13


@pytest.mark.parametrize("heartbeat, read", [(True, True), ("TRUE", True), (1, False), ("yes", False), (None, False)])
def test_heartbeat_is_read_like_flinks_boolean_column(heartbeat, read):
    assert job(heartbeat=heartbeat).heartbeat is read


def test_unconvertible_fields_make_a_reject_not_a_dropped_record():
    record = job(product_quantity=True)
    assert record is not None and not record.countable
    assert as_job_reads([1, 2, 3]) is None and as_job_reads("not an object") is None
