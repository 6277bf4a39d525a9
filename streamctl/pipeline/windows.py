"""Window arithmetic in plain Python: the independent recomputation `validate` and the tests use.

It mirrors the Flink job's rules (stack/flink/job.py): a record counts when it is not a heartbeat
and has every dimension, a quantity >= 1 and a total > 0; it falls in the tumbling window that
contains its event time (transaction_date, or the Kafka timestamp when that is unreadable).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable

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


def is_heartbeat(record: Any) -> bool:
    return isinstance(record, dict) and record.get("heartbeat") is True


def countable(record: Any) -> bool:
    """The job's filter: what is aggregated. Everything else that is not a heartbeat is a reject."""
    if not isinstance(record, dict) or is_heartbeat(record):
        return False
    for name in DIMENSIONS:
        if not isinstance(record.get(name), str):
            return False
    quantity, total = record.get("product_quantity"), record.get("total_amount")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        return False
    if not isinstance(total, (int, float, Decimal)) or isinstance(total, bool) or total <= 0:
        return False
    return True


def event_time_ms(record: dict[str, Any], kafka_timestamp_ms: int) -> int:
    value = record.get("transaction_date")
    if isinstance(value, str):
        try:
            return parse_event_time(value)
        except ValueError:
            pass
    return kafka_timestamp_ms


def aggregate(records: Iterable[tuple[dict[str, Any], int]], size_ms: int) -> dict[WindowKey, WindowFigures]:
    """records: (decoded JSON value, Kafka timestamp ms) for each countable record."""
    windows: dict[WindowKey, WindowFigures] = {}
    for record, kafka_ts in records:
        key = WindowKey(
            window_start(event_time_ms(record, kafka_ts), size_ms),
            record["product_category"], record["product_brand"], record["payment_method"], record["currency"],
        )
        figures = windows.get(key)
        if figures is None:
            figures = windows[key] = WindowFigures()
        figures.transaction_count += 1
        figures.items_sold += record["product_quantity"]
        total = record["total_amount"]
        figures.revenue += total if isinstance(total, Decimal) else Decimal(repr(total)).quantize(CENT, ROUND_HALF_UP)
    return windows
