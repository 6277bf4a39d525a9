"""Property-based fuzzing of the producer API on a real stack: 5,000 generated requests shaped by
the OpenAPI document (valid transactions, each field mutated to other JSON types and edge values,
adversarial text: control characters, unpaired surrogates, 4-byte characters, `|`, maximum lengths;
the largest amount many times; arbitrary JSON, raw bytes, wrong content types). No answer is a 5xx
other than a 503 for Kafka, nothing the contract refuses reaches the topic, the job never restarts,
and validate ends exact: whatever got a 2xx was stored by every sink."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamctl.exit_codes import ExitCode
from streamctl.pipeline.contract import MAX_MONEY, validate_transaction
from streamctl.pipeline.windows import is_heartbeat
from tests.integration.stackutil import TEST_PORTS, cli, get, post_json
from tests.integration.stackutil import topic_records, job_exceptions

pytestmark = pytest.mark.integration
REQUESTS = 5000


@pytest.fixture(scope="module")
def stack(shared_stack):
    return shared_stack


def document(stack) -> dict:
    status, body = get(f"http://127.0.0.1:{TEST_PORTS['producer']}/openapi.json")
    assert status == 200
    return json.loads(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=12,
)


# What attackers of the "every 2xx can be stored" promise reach for.
HOSTILE_CHARACTERS = st.sampled_from(["|", "\x00", "\t", "\x1f", "\x7f", "\x85", "\ud800", "\udfff", "😀", "𝄞", "'",
                                      '"', "\\", "é", "\u2028", "\ufeff", " "])


def hostile_text(limit: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(min_size=1, max_size=limit),
        st.text(alphabet=HOSTILE_CHARACTERS | st.characters(), min_size=1, max_size=limit),
        st.text(alphabet=st.characters(min_codepoint=0x10000, max_codepoint=0x1FFFF), min_size=limit,
                max_size=limit),  # the longest text, all 4-byte characters
        st.text(alphabet="|abc", min_size=limit - 1, max_size=limit + 1),
    ).filter(str.strip)


def transactions_from(schema: dict) -> st.SearchStrategy[dict]:
    """Valid transactions within the schema's limits, then mutated field by field."""
    props = schema["properties"]
    text = {name: hostile_text(p["maxLength"])
            for name, p in props.items() if p.get("type") == "string" and "maxLength" in p}

    @st.composite
    def valid(draw):
        if draw(st.integers(0, 9)) == 0:  # the largest amount, often enough to meet in one window
            price, quantity = MAX_MONEY, 1
        else:
            price = draw(st.decimals(min_value="0.01", max_value="100000", places=2))
            quantity = draw(st.integers(min_value=1, max_value=props["product_quantity"]["maximum"]))
        record = {name: draw(strategy) for name, strategy in text.items()}
        record.update(transaction_id=str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
                      product_id=draw(st.integers(1, 2**63 - 1)), customer_id=draw(st.integers(1, 2**63 - 1)),
                      product_price=float(price), product_quantity=quantity, total_amount=float(price) * quantity,
                      currency=draw(st.from_regex(r"\A[A-Z]{3}\Z")), transaction_date="now")
        return record

    @st.composite
    def mutated(draw):
        record = draw(valid())
        for name in draw(st.lists(st.sampled_from(sorted(props)), max_size=3, unique=True)):
            if draw(st.booleans()):
                record[name] = draw(json_values)
            else:
                record.pop(name, None)
        if draw(st.booleans()):
            record[draw(st.text(max_size=10))] = draw(json_values)  # an unknown extra field
        return record

    return st.one_of(valid(), mutated())


def test_5000_generated_requests_no_5xx_nothing_invalid_reaches_kafka_and_validate_exact(stack):
    api = f"http://127.0.0.1:{TEST_PORTS['producer']}"
    job_before = job_exceptions(stack)
    schema = document(stack)["components"]["schemas"]["Transaction"]
    statuses: dict[int, int] = {}
    bodies = st.one_of(
        transactions_from(schema).map(lambda r: ("json", r)),
        json_values.map(lambda v: ("json", v)),
        st.binary(max_size=200).map(lambda b: ("raw", b)),
        transactions_from(schema).map(lambda r: ("text/plain", r)),
        st.lists(transactions_from(schema), max_size=5).map(lambda batch: ("batch", batch)),
    )

    @settings(max_examples=REQUESTS, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(bodies)
    def one_request(case):
        kind, body = case
        if kind == "json":
            status = post_json(f"{api}/transaction", json.dumps(body, allow_nan=False).encode())[0]
        elif kind == "raw":
            status = post_json(f"{api}/transaction", body)[0]
        elif kind == "text/plain":
            status = post_json(f"{api}/transaction", json.dumps(body).encode(), "text/plain")[0]
        else:
            status = post_json(f"{api}/transactions", json.dumps(body).encode())[0]
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, (status, case)

    one_request()
    assert sum(statuses.values()) >= REQUESTS
    assert statuses.get(201, 0) > 100 and statuses.get(400, 0) > 100 and statuses.get(415, 0) > 10
    for record in topic_records(stack):
        if is_heartbeat(record):
            continue
        published, errors = validate_transaction(record, record.get("transaction_date", ""))
        assert errors == {} and published == record, record
    assert cli(stack, "validate", "--wait", "90s") == ExitCode.OK
    assert job_exceptions(stack) == job_before  # no record made the job fail a checkpoint or restart
