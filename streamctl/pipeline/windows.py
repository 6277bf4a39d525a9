"""Window arithmetic in plain Python: the independent recomputation `validate` and the tests use.

It mirrors the Flink job's rules (stack/flink/job.py), each read the way Flink's JSON format reads
the record (JobRecord):
- a record counts when it is not a heartbeat and has a transaction id, every dimension as storable
  text, a currency of three letters A-Z, a quantity in 1..1,000,000 and a total > 0;
- its event time is transaction_date when that is the canonical UTC form of a real instant within
  the tolerance of Kafka's append time, else the append time (event_time_ms);
- of the copies of one transaction id, a copy counts only when no other copy has an event time in
  the retry horizon before it, nor the same time at an earlier place in the topic (ExpectedWindows);
- it falls in the tumbling window that contains its event time.
"""

from __future__ import annotations

import calendar
import functools
import json
import re
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any, Iterable, NamedTuple, cast

from streamctl.pipeline.contract import CENT, MAX_QUANTITY

DIMENSIONS = ("product_category", "product_brand", "payment_method", "currency")


class WindowKey(NamedTuple):
    """A tuple, not a dataclass: validate looks one up per record, and a tuple hashes and compares
    in C (the dataclass's generated __eq__ was 5% of a scan)."""

    window_start_ms: int
    category: str
    brand: str
    payment_method: str
    currency: str


MICRO = Decimal("0.000001")


@dataclass
class WindowFigures:
    transaction_count: int = 0
    items_sold: int = 0
    revenue: Decimal = Decimal("0.00")

    @property
    def avg_ticket(self) -> Decimal:
        """As the job computes it: SUM(DECIMAL(38, 2)) / COUNT(*) is a DECIMAL(38, 6), rounded half
        up, then cast to DECIMAL(14, 2), rounded half up again."""
        if not self.transaction_count:
            return Decimal("0.00")
        with localcontext() as exact:
            exact.prec = 80
            quotient = (self.revenue / self.transaction_count).quantize(MICRO, ROUND_HALF_UP)
            return quotient.quantize(CENT, ROUND_HALF_UP)


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


_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # as job.py's UNSTORABLE
_CURRENCY = re.compile("[A-Z]{3}")
MAX_TEXT_CHARS = 256  # code points, as Flink's CHAR_LENGTH counts them (measured: an emoji is 1)


def storable(text: str | None) -> bool:
    return text is not None and 1 <= len(text) <= MAX_TEXT_CHARS and not _UNSTORABLE.search(text)


class JobRecord(NamedTuple):
    """A record as the job's source table reads it: Flink's JSON format is lenient, and this mirrors
    what it was measured to do (Flink 1.20): a number or boolean in a STRING column becomes its JSON
    text and an object its compact JSON; an INT column takes "4" and truncates 3.7; a DECIMAL(14, 2)
    column takes "12.345" (rounded half up) and "1e2"; a value it cannot convert becomes NULL (the
    record is then a reject); a BOOLEAN column reads the string "true" as true."""

    transaction_id: str | None
    category: str | None
    brand: str | None
    payment_method: str | None
    currency: str | None
    quantity: int | None
    total: Decimal | None
    heartbeat: bool

    @property
    def countable(self) -> bool:
        return (not self.heartbeat
                and storable(self.transaction_id) and storable(self.category) and storable(self.brand)
                and storable(self.payment_method)
                and self.currency is not None and _CURRENCY.fullmatch(self.currency) is not None
                and self.quantity is not None and 1 <= self.quantity <= MAX_QUANTITY
                and self.total is not None and self.total > 0)


def _needs_literals(value: dict) -> bool:
    """orjson gives floats; the exact JSON text matters where a float lands in a STRING column."""
    return any(isinstance(value.get(name), (float, dict, list)) for name in ("transaction_id", *DIMENSIONS))


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
    tid, category, brand = get("transaction_id"), get("product_category"), get("product_brand")
    payment, currency = get("payment_method"), get("currency")
    quantity, total = get("product_quantity"), get("total_amount")
    if (type(tid) is str and type(category) is str and type(brand) is str and type(payment) is str
            and type(currency) is str and type(quantity) is int and INT_MIN <= quantity <= INT_MAX
            and get("heartbeat") is None):
        # what the API writes: only the total needs reading, from its literal text when there is one
        if raw is not None and type(total) is float:
            literal = _total_literal(raw)
            if literal is not None:
                total = literal
        return JobRecord(tid, category, brand, payment, currency, quantity, _as_decimal(total), False)
    if raw is not None and _needs_literals(value):
        value = literal_json(raw)
    elif raw is not None and isinstance(value.get("total_amount"), float):
        literal = _total_literal(raw)
        value = {**value, "total_amount": literal} if literal is not None else literal_json(raw)
    return JobRecord(
        transaction_id=_as_string(value.get("transaction_id")),
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


_CANONICAL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


@functools.lru_cache(maxsize=65536)
def _canonical_seconds(base: str) -> int | None:
    """Epoch seconds of 2026-11-25T18:55:49 when it names a real instant in exactly that form."""
    try:
        seconds = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    except (ValueError, OverflowError):
        return None
    return seconds if time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) == base else None


def stated_time_ms(value: Any) -> int | None:
    """transaction_date as the job reads it: only the canonical form of a real instant counts
    (strptime alone takes second 60, Java alone takes 24:00 and February 30)."""
    if type(value) is not str or len(value) != 24 or not _CANONICAL_DATE.fullmatch(value):
        return None
    seconds = _canonical_seconds(value[:19])
    return None if seconds is None else seconds * 1000 + int(value[20:23])


def event_time_ms(record: dict[str, Any], appended_ms: int, tolerance_ms: int) -> int:
    """transaction_date when it is canonical and within the tolerance of Kafka's append time;
    otherwise the append time."""
    stated = stated_time_ms(record.get("transaction_date"))
    return stated if stated is not None and abs(stated - appended_ms) <= tolerance_ms else appended_ms


def topic_position(partition: int, offset: int) -> int:
    """A record's place in the topic as one number, as the job computes it (offset * 1024 + partition)."""
    return offset * 1024 + partition


# One countable record: (event time ms, topic position, window key, quantity, total).
Copy = tuple[int, int, WindowKey, int, Decimal]


def copy_order(copy: Copy) -> tuple[int, int]:
    return copy[0], copy[1]


def first_positions(group: list[Copy], horizon_ms: int) -> set[int]:
    """The topic positions of the copies that count in a group sorted by copy_order."""
    return {c[1] for i, c in enumerate(group) if i == 0 or c[0] - group[i - 1][0] > horizon_ms}


@dataclass
class ExpectedWindows:
    """The figures the job must produce, with retries counted once.

    Of the copies of a transaction id, in (event time, topic position) order, a copy counts when it
    is the first or its predecessor's event time lies more than the horizon before its own. A copy
    read later may sort earlier (a writer chose its date), so each new copy of a known id re-decides
    the whole group and moves counts between the windows and the duplicates."""

    size_ms: int
    horizon_ms: int
    figures: dict[WindowKey, WindowFigures] = field(default_factory=dict)
    duplicates: dict[int, int] = field(default_factory=dict)  # window start -> later copies not counted
    _copies: dict[str, Copy | list[Copy]] = field(default_factory=dict)

    @property
    def duplicates_dropped(self) -> int:
        return sum(self.duplicates.values())

    def add(self, transaction_id: str, copy: Copy) -> bool:
        """Count one copy, re-deciding its id's group; True when it is the id's first copy."""
        held = self._copies.get(transaction_id)
        if held is None:
            self._copies[transaction_id] = copy
            self._count(copy, 1)
            return True
        group = [held] if isinstance(held, tuple) else held
        before = first_positions(group, self.horizon_ms)
        group.append(copy)
        group.sort(key=copy_order)
        self._copies[transaction_id] = group
        after = first_positions(group, self.horizon_ms)
        for member in group:
            now = member[1] in after
            if member is not copy:
                was = member[1] in before
                if was == now:
                    continue
                self._move(member, counted=was, delta=-1)
            self._move(member, counted=now, delta=1)
        return False

    def ids(self) -> Iterable[str]:
        return self._copies.keys()

    def group(self, transaction_id: str) -> list[Copy]:
        """The copies of one id held here, in (event time, topic position) order."""
        held = self._copies.get(transaction_id)
        return [] if held is None else [held] if isinstance(held, tuple) else list(held)

    def tally(self, group: list[Copy], delta: int) -> None:
        """Add (delta 1) or take back (-1) the effect of a whole group of copies of one id, sorted."""
        firsts = first_positions(group, self.horizon_ms)
        for member in group:
            self._move(member, counted=member[1] in firsts, delta=delta)

    def _move(self, copy: Copy, counted: bool, delta: int) -> None:
        """Add (delta 1) or take back (-1) one copy: to its window's figures, or to the duplicates."""
        if counted:
            self._count(copy, delta)
        else:
            self._duplicate(copy, delta)

    def _duplicate(self, copy: Copy, delta: int) -> None:
        start = window_start(copy[0], self.size_ms)
        self.duplicates[start] = self.duplicates.get(start, 0) + delta
        if not self.duplicates[start]:
            del self.duplicates[start]

    def _count(self, copy: Copy, delta: int) -> None:
        _, _, key, quantity, total = copy
        figures = self.figures.get(key)
        if figures is None:
            figures = self.figures[key] = WindowFigures()
        figures.transaction_count += delta
        figures.items_sold += delta * quantity
        figures.revenue += total if delta > 0 else -total
        if not figures.transaction_count:
            del self.figures[key]


def counted_copy(job: JobRecord, event_ms: int, position: int, size_ms: int) -> tuple[str, Copy] | None:
    """A record the job counts, as (transaction id, copy); None for a reject."""
    if not job.countable:
        return None
    key = WindowKey(window_start(event_ms, size_ms), cast(str, job.category), cast(str, job.brand),
                    cast(str, job.payment_method), cast(str, job.currency))
    return cast(str, job.transaction_id), (event_ms, position, key, cast(int, job.quantity), cast(Decimal, job.total))


def aggregate(records: Iterable[tuple[dict[str, Any], int]], size_ms: int, tolerance_ms: int = 1000,
              horizon_ms: int = 600_000) -> dict[WindowKey, WindowFigures]:
    """records: (decoded JSON value, Kafka append time ms) in topic order; what the job would not
    count is skipped, and retries are counted once."""
    windows = ExpectedWindows(size_ms, horizon_ms)
    for position, (record, appended_ms) in enumerate(records):
        job = as_job_reads(record)
        counted = counted_copy(job, event_time_ms(record, appended_ms, tolerance_ms), position, size_ms) if job else None
        if counted is not None:
            windows.add(*counted)
    return windows.figures
