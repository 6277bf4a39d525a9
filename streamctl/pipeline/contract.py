"""The transaction contract: what `POST /transaction` accepts and what goes into the Kafka topic.

Unknown extra fields are dropped (the topic carries exactly the contract's fields), so a client
sending more never breaks the job or the sinks. `transaction_date` from the client is ignored: the
API stamps the receive time, which is the event time.

Whatever this accepts can be stored by every sink: text holds no control character (PostgreSQL
`text` cannot hold NUL; the others break logs and dashboards) and no lone surrogate (JSON allows
the escape, UTF-8 cannot encode it); at most 64-200 characters, so at most 800 UTF-8 bytes, far
below what a PostgreSQL row or an Elasticsearch keyword holds (Elasticsearch `_id`s are hashes,
see indexer.py). Money is at most MAX_MONEY per transaction; a window's revenue is DECIMAL(38, 2),
which would need 10^24 transactions at MAX_MONEY to overflow: more records than Kafka can hold.
"""

from __future__ import annotations

import calendar
import functools
import math
import re
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
TOTAL_TOLERANCE = Decimal("0.01")
MAX_MONEY = Decimal("999999999999.99")  # NUMERIC(14,2)
MAX_INT = 2**63 - 1
MAX_QUANTITY = 1_000_000
CURRENCY_RE = re.compile(r"[A-Z]{3}")
# C0 and C1 control characters, DEL, and UTF-16 surrogates (a str holds one only when unpaired).
UNSTORABLE_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# Field order of a record in the topic.
FIELDS = (
    "transaction_id", "product_id", "product_name", "product_category", "product_price",
    "product_quantity", "product_brand", "total_amount", "currency", "customer_id",
    "transaction_date", "payment_method",
)
TEXT_LIMITS = {"product_name": 200, "product_category": 64, "product_brand": 64, "payment_method": 64}


def _positive_int(value: Any, minimum: int, maximum: int = MAX_INT) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return "must be an integer"
    if value < minimum:
        return f"must be >= {minimum}"
    if value > maximum:
        return f"must be <= {maximum}"
    return None


def _number(value: Any) -> Decimal | str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "must be a number"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    try:
        # repr() keeps what the client wrote (370.34999999999997), not the binary expansion.
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:  # pragma: no cover - repr of a finite float always parses
        return "must be a number"


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if not value.strip():
        return "must not be empty"
    if len(value) > limit:
        return f"must be at most {limit} characters"
    bad = UNSTORABLE_RE.search(value)
    if bad:
        return f"must not contain control characters or unpaired surrogates (found U+{ord(bad.group()):04X})"
    return None


def validate_transaction(payload: Any, event_time: str) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """Check one payload. Returns (the record to publish, {}) or (None, {field: problem})."""
    if not isinstance(payload, dict):
        return None, {"body": "must be a JSON object"}
    errors: dict[str, str] = {}

    def field(name: str) -> Any:
        if name not in payload or payload[name] is None:
            errors[name] = "is required"
            return None
        return payload[name]

    record: dict[str, Any] = {}
    tid = field("transaction_id")
    if tid is not None:
        try:
            if not isinstance(tid, str) or len(tid) > 64:
                raise ValueError
            record["transaction_id"] = str(uuid.UUID(tid))
        except ValueError:
            errors["transaction_id"] = "must be a UUID"

    for name, minimum, maximum in (("product_id", 1, MAX_INT), ("customer_id", 1, MAX_INT),
                                   ("product_quantity", 1, MAX_QUANTITY)):
        value = field(name)
        if value is not None:
            problem = _positive_int(value, minimum, maximum)
            if problem:
                errors[name] = problem
            else:
                record[name] = value

    for name, limit in TEXT_LIMITS.items():
        value = field(name)
        if value is not None:
            problem = _text(value, limit)
            if problem:
                errors[name] = problem
            else:
                record[name] = value

    currency = field("currency")
    if currency is not None:
        if isinstance(currency, str) and CURRENCY_RE.fullmatch(currency):
            record["currency"] = currency
        else:
            errors["currency"] = "must be a 3-letter upper-case code such as BRL"

    price = field("product_price")
    price_dec: Decimal | None = None
    if price is not None:
        parsed = _number(price)
        if isinstance(parsed, str):
            errors["product_price"] = parsed
        elif parsed <= 0 or parsed > MAX_MONEY:
            errors["product_price"] = f"must be > 0 and <= {MAX_MONEY}"
        else:
            price_dec = parsed
            record["product_price"] = price

    total = field("total_amount")
    if total is not None:
        parsed = _number(total)
        if isinstance(parsed, str):
            errors["total_amount"] = parsed
        elif parsed <= 0 or parsed > MAX_MONEY:
            errors["total_amount"] = f"must be > 0 and <= {MAX_MONEY}"
        elif price_dec is not None and "product_quantity" in record:
            expected = price_dec * record["product_quantity"]
            if abs(parsed - expected) > TOTAL_TOLERANCE:
                errors["total_amount"] = f"must equal product_price x product_quantity ({expected}) within 0.01"
        if isinstance(parsed, Decimal) and "total_amount" not in errors:
            cents = parsed.quantize(CENT, rounding=ROUND_HALF_UP)
            # float(Decimal) of a 2-decimal value prints back as exactly those 2 decimals.
            record["total_amount"] = float(cents)

    if errors:
        return None, errors
    record["transaction_date"] = event_time
    return {name: record[name] for name in FIELDS}, {}


def format_event_time(epoch_ms: int) -> str:
    """UTC ISO-8601 with milliseconds, e.g. 2026-11-25T18:55:49.123Z."""
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


@functools.lru_cache(maxsize=65536)
def _epoch_seconds(base: str) -> int:
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))


def parse_event_time(text: str) -> int:
    """Inverse of format_event_time: epoch milliseconds. (Cached by the second: validate parses
    millions of these, and strptime is the slow part.)"""
    base, _, frac = text.rstrip("Z").partition(".")
    return _epoch_seconds(base) * 1000 + int((frac or "0")[:3].ljust(3, "0"))
