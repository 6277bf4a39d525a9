from __future__ import annotations

import copy
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from streamctl.pipeline.contract import format_event_time, parse_event_time, validate_transaction
from tests.payloads import reference_payload

EVENT_TIME = "2026-11-25T18:55:49.123Z"


def test_reference_payload_is_accepted_and_normalised():
    record, errors = validate_transaction(reference_payload(), EVENT_TIME)
    assert errors == {}
    assert record["total_amount"] == 370.35
    assert record["transaction_date"] == EVENT_TIME  # the client's "now" is replaced by the receive time
    assert list(record) == [
        "transaction_id", "product_id", "product_name", "product_category", "product_price", "product_quantity",
        "product_brand", "total_amount", "currency", "customer_id", "transaction_date", "payment_method"]


def test_unknown_fields_are_dropped():
    payload = reference_payload() | {"coupon": "X", "nested": {"a": [1, 2]}}
    record, errors = validate_transaction(payload, EVENT_TIME)
    assert errors == {} and "coupon" not in record and "nested" not in record


def test_missing_transaction_date_is_fine():
    payload = reference_payload()
    del payload["transaction_date"]
    assert validate_transaction(payload, EVENT_TIME)[1] == {}


INVALID = [
    ("transaction_id", "not-a-uuid"), ("transaction_id", 12), ("transaction_id", None),
    ("product_id", 0), ("product_id", -1), ("product_id", "7"), ("product_id", True), ("product_id", 1.5),
    ("product_name", ""), ("product_name", "x" * 201), ("product_name", 5), ("product_name", "   "),
    ("product_category", ""), ("product_category", "c" * 65),
    ("product_price", 0), ("product_price", -3.5), ("product_price", "10"), ("product_price", False),
    ("product_quantity", 0), ("product_quantity", 2.0), ("product_quantity", "3"), ("product_quantity", 10**7),
    ("product_brand", ""), ("product_brand", ["Nike"]),
    ("total_amount", 999.0), ("total_amount", 0), ("total_amount", "370.35"), ("total_amount", float("inf")),
    ("currency", "BR"), ("currency", "brl"), ("currency", "BRLX"), ("currency", 986),
    ("customer_id", 0), ("customer_id", "1"),
    ("payment_method", ""), ("payment_method", "p" * 65), ("payment_method", {}),
]


@pytest.mark.parametrize("field, value", INVALID)
def test_each_invalid_field_is_named_on_its_own(field, value):
    payload = reference_payload()
    payload[field] = value
    record, errors = validate_transaction(payload, EVENT_TIME)
    assert record is None
    assert set(errors) == {field}, errors


@pytest.mark.parametrize("field", ["transaction_id", "product_id", "product_name", "product_category",
                                   "product_price", "product_quantity", "product_brand", "total_amount",
                                   "currency", "customer_id", "payment_method"])
def test_each_missing_field_is_named(field):
    payload = reference_payload()
    del payload[field]
    record, errors = validate_transaction(payload, EVENT_TIME)
    assert record is None and errors == {field: "is required"}


@pytest.mark.parametrize("body", [[], "text", 5, None, [reference_payload()]])
def test_non_object_bodies(body):
    record, errors = validate_transaction(copy.deepcopy(body), EVENT_TIME)
    assert record is None and "body" in errors


def test_total_tolerance_and_rounding():
    payload = reference_payload() | {"product_price": 10.0, "product_quantity": 3}
    for total, stored in ((30.0, 30.0), (30.01, 30.01), (29.99, 29.99), (30.005, 30.01), (29.995, 30.0)):
        record, errors = validate_transaction(payload | {"total_amount": total}, EVENT_TIME)
        assert errors == {} and record["total_amount"] == stored
        assert Decimal(repr(record["total_amount"])) == Decimal(str(stored))
    assert validate_transaction(payload | {"total_amount": 30.02}, EVENT_TIME)[1].keys() == {"total_amount"}


def test_event_time_format_round_trips():
    for ms in (0, 1795633515746, 1795633515000, 1795633515999):
        text = format_event_time(ms)
        assert text.endswith("Z") and len(text) == 24
        assert parse_event_time(text) == ms
    expected = datetime.fromtimestamp(1795633515.746, tz=timezone.utc).isoformat(timespec="milliseconds")
    assert format_event_time(1795633515746) == expected.replace("+00:00", "Z")


@pytest.mark.parametrize("field", ["product_category", "product_brand", "payment_method", "product_name"])
@pytest.mark.parametrize("text", ["Bo\x00oks", "a\tb", "line\nbreak", "del\x7f", "c1\x85", "lone\ud800", "\udc00"])
def test_text_no_sink_can_store_is_refused_naming_the_field(field, text):
    record, errors = validate_transaction({**reference_payload(), field: text}, EVENT_TIME)
    assert record is None
    assert "control characters or unpaired surrogates" in errors[field]


@pytest.mark.parametrize("text", ["A|B", "😀" * 64, "Ünïcödé", "'; DROP TABLE sales_summary; --", "<script>"])
def test_hostile_but_storable_text_is_accepted_as_written(text):
    record, errors = validate_transaction({**reference_payload(), "product_category": text}, EVENT_TIME)
    assert errors == {} and record["product_category"] == text


@pytest.mark.parametrize("currency", ["BRL\n", "brl", "BRLL", "ＢＲＬ"])
def test_currency_is_exactly_three_letters_a_to_z(currency):
    _, errors = validate_transaction({**reference_payload(), "currency": currency}, EVENT_TIME)
    assert "currency" in errors
