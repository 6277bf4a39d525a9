"""Window arithmetic in plain Python: the independent recomputation `validate` and the tests use.

It mirrors the Flink job's rules (stack/flink/job.py): a record counts when it is not a heartbeat
and has every dimension, a quantity >= 1 and a total > 0, each read the way Flink's JSON format
reads it (JobRecord); it falls in the tumbling window that contains its event time
(transaction_date, or the Kafka timestamp when that is unreadable).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Iterable, NamedTuple

from streamctl.pipeline.contract import CENT, parse_event_time

DIMENSIONS = ("product_category", "product_brand", "payment_method", "currency")


@dataclass(frozen=True, order=True)
class WindowKey:
    window_start_ms: int
    category: str
    brand: str
    payment_method: str
    currency: str

    def doc_id(self) -> str:
        """Elasticsearch _id: deterministic, so a replay overwrites instead of duplicating."""
        return f"{self.window_start_ms}|{self.category}|{self.brand}|{self.payment_method}|{self.currency}"


@dataclass
class WindowFigures:
    transaction_count: int = 0
    items_sold: int = 0
    revenue: Decimal = Decimal("0.00")

    @property
    def avg_ticket(self) -> Decimal:
        return (self.revenue / self.transaction_count).quantize(CENT, ROUND_HALF_UP) if self.transaction_count else Decimal("0.00")


def window_start(epoch_ms: int, size_ms: int) -> int:
    return epoch_ms - epoch_ms % size_ms


INT_MIN, INT_MAX = -(2**31), 2**31 - 1
TOTAL_PRECISION = 14  # DECIMAL(14, 2) in the job
_JAVA_INT = re.compile(r"[+-]?[0-9]+")
_JAVA_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_JAVA_WHITESPACE = "".join(chr(c) for c in range(33))  # what Java's String.trim() removes


class Literal(str):
    """A JSON number kept as the text it was written with (records decoded with `literal_json`)."""


def literal_json(raw: bytes) -> Any:
    return json.loads(raw, parse_float=Literal, parse_int=Literal)


class JobRecord(NamedTuple):
    """A record as the job's source table reads it: Flink's JSON format is lenient, and this mirrors
    what it was measured to do (Flink 1.20): a number or boolean in a STRING column becomes its JSON
    text and an object its compact JSON; an INT column takes "4" and truncates 3.7; a DECIMAL(14, 2)
    column takes "12.345" (rounded half up) and "1e2"; a value it cannot convert becomes NULL (the
    record is then a reject); a BOOLEAN column reads the string "true" as true."""

    category: str | None
    brand: str | None
    payment_method: str | None
    currency: str | None
    quantity: int | None
    total: Decimal | None
    heartbeat: bool

    @property
    def countable(self) -> bool:
        return (not self.heartbeat and None not in (self.category, self.brand, self.payment_method, self.currency)
                and self.quantity is not None and self.quantity >= 1 and self.total is not None and self.total > 0)


def _needs_literals(value: dict) -> bool:
    """orjson gives floats; the exact JSON text matters where a float lands in a STRING column."""
    return any(isinstance(value.get(name), (float, dict, list)) for name in DIMENSIONS)


_TOTAL_LITERAL = re.compile(rb'"total_amount"\s*:\s*(-?[0-9][0-9.eE+-]*)')


def _total_literal(raw: bytes) -> Literal | None:
    """The total as written: a float keeps about 17 digits, DECIMAL(14, 2) rounds the whole text."""
    found = _TOTAL_LITERAL.findall(raw)
    return Literal(found[0].decode()) if len(found) == 1 else None


def _as_string(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not isinstance(value, Literal)):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (Literal, int)):
        return str.__str__(value) if isinstance(value, Literal) else str(value)
    if isinstance(value, float):
        return repr(value)  # only reached without literals; callers re-decode when it matters
    return _compact(value)


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _compact(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    if isinstance(value, Literal):
        return str.__str__(value)
    return json.dumps(value, ensure_ascii=False)


def _as_int(value: Any) -> int | None:
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    if isinstance(value, str) and not isinstance(value, Literal):
        text = value.strip(_JAVA_WHITESPACE)
        number = int(text) if _JAVA_INT.fullmatch(text) else None
    elif isinstance(value, Literal):
        number = int(value) if _JAVA_INT.fullmatch(value) else int(Decimal(value))  # truncates like Java
    elif isinstance(value, float):
        number = int(value) if value == value and abs(value) < 2**63 else None
    else:
        number = value
    return number if number is not None and INT_MIN <= number <= INT_MAX else None


_DECIMALS: dict[str, Decimal | None] = {}  # totals repeat: a scan of a million records meets few distinct ones


def _as_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    text = repr(value) if isinstance(value, float) else str.__str__(value) if isinstance(value, str) else str(value)
    if text in _DECIMALS:
        return _DECIMALS[text]
    if len(_DECIMALS) > 100_000:
        _DECIMALS.clear()
    _DECIMALS[text] = result = _parse_decimal(text)
    return result


def _parse_decimal(text: str) -> Decimal | None:
    text = text.strip(_JAVA_WHITESPACE)
    if not _JAVA_DECIMAL.fullmatch(text):
        return None
    try:
        rounded = Decimal(text).quantize(CENT, ROUND_HALF_UP)
    except InvalidOperation:  # beyond what any DECIMAL(14, 2) holds
        return None
    return rounded if len(rounded.as_tuple().digits) <= TOTAL_PRECISION else None


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and not isinstance(value, Literal) and value.strip(_JAVA_WHITESPACE).lower() == "true"


def as_job_reads(value: Any, raw: bytes | None = None) -> JobRecord | None:
    """None when the job never sees a row (not JSON, or not a JSON object)."""
    if not isinstance(value, dict):
        return None
    get = value.get
    category, brand, payment, currency = get("product_category"), get("product_brand"), get("payment_method"), get("currency")
    quantity, total = get("product_quantity"), get("total_amount")
    if (type(category) is str and type(brand) is str and type(payment) is str and type(currency) is str
            and type(quantity) is int and INT_MIN <= quantity <= INT_MAX and get("heartbeat") is None):
        # what the API writes: only the total needs reading, from its literal text when there is one
        if raw is not None and type(total) is float:
            literal = _total_literal(raw)
            if literal is not None:
                total = literal
        return JobRecord(category, brand, payment, currency, quantity, _as_decimal(total), False)
    if raw is not None and _needs_literals(value):
        value = literal_json(raw)
    elif raw is not None and isinstance(value.get("total_amount"), float):
        literal = _total_literal(raw)
        value = {**value, "total_amount": literal} if literal is not None else literal_json(raw)
    return JobRecord(
        category=_as_string(value.get("product_category")), brand=_as_string(value.get("product_brand")),
        payment_method=_as_string(value.get("payment_method")), currency=_as_string(value.get("currency")),
        quantity=_as_int(value.get("product_quantity")), total=_as_decimal(value.get("total_amount")),
        heartbeat=_as_bool(value.get("heartbeat")),
    )


def is_heartbeat(record: Any) -> bool:
    return isinstance(record, dict) and _as_bool(record.get("heartbeat"))


def countable(record: Any, raw: bytes | None = None) -> bool:
    """The job's filter: what is aggregated. Everything else that is not a heartbeat is a reject."""
    job = as_job_reads(record, raw)
    return job is not None and job.countable


def event_time_ms(record: dict[str, Any], kafka_timestamp_ms: int) -> int:
    value = record.get("transaction_date")
    if isinstance(value, str):
        try:
            return parse_event_time(value)
        except ValueError:
            pass
    return kafka_timestamp_ms


def aggregate(records: Iterable[tuple[dict[str, Any], int]], size_ms: int) -> dict[WindowKey, WindowFigures]:
    """records: (decoded JSON value, Kafka timestamp ms); what the job would not count is skipped."""
    windows: dict[WindowKey, WindowFigures] = {}
    for record, kafka_ts in records:
        job = as_job_reads(record)
        if job is None or not job.countable:
            continue
        add(windows, WindowKey(window_start(event_time_ms(record, kafka_ts), size_ms),
                               job.category, job.brand, job.payment_method, job.currency), job)
    return windows


def add(windows: dict[WindowKey, WindowFigures], key: WindowKey, job: JobRecord) -> None:
    figures = windows.get(key)
    if figures is None:
        figures = windows[key] = WindowFigures()
    figures.transaction_count += 1
    figures.items_sold += job.quantity
    figures.revenue += job.total
