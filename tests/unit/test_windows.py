from __future__ import annotations

from decimal import Decimal

from streamctl.pipeline.windows import WindowFigures, WindowKey, aggregate, countable, window_start

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
