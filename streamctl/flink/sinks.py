"""Erase the sinks' windows from a time on, before a replay recomputes them (`streamctl job replay`)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from streamctl.endpoints import Endpoints
from streamctl.errors import ServiceUnavailable
from streamctl.kafka_access import KafkaAccess
from streamctl.kafka_info import lag_report


def wait_until_indexed(kafka: KafkaAccess, group: str, topic: str, timeout_s: float = 90) -> None:
    """Wait until the indexer has taken every aggregate the stopped job wrote: a document it indexes
    after the erase would be an old window that no recomputation replaces."""
    deadline = time.monotonic() + timeout_s
    lag = -1
    while time.monotonic() < deadline:
        lag = sum(g.lag for g in lag_report(kafka, {group: topic}))
        if lag == 0:
            return
        time.sleep(1)
    raise ServiceUnavailable(f"the indexer is {lag} aggregates behind after {timeout_s:.0f} s; erasing now would"
                             " leave old windows in Elasticsearch", hint="check `streamctl status`, then run the"
                                                                        " replay again (the job is stopped)")


def erase_windows(endpoints: Endpoints, index: str, from_ms: int | None) -> str:
    """Delete the windows starting at or after `from_ms` (None: every window) in PostgreSQL
    (sales_summary, rejected_summary) and Elasticsearch. Returns what was deleted, for the user."""
    start = datetime.fromtimestamp(from_ms / 1000, timezone.utc) if from_ms is not None else None
    connection = endpoints.postgres.connect()
    deleted = {}
    try:
        with connection, connection.cursor() as cursor:
            for table in ("sales_summary", "rejected_summary"):
                if start is None:
                    cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (a constant table name)
                else:
                    cursor.execute(f"DELETE FROM {table} WHERE window_start >= %s", (start,))  # noqa: S608
                deleted[table] = cursor.rowcount
    finally:
        connection.close()
    query = {"range": {"window_start": {"gte": start.isoformat()}}} if start else {"match_all": {}}
    documents = _delete_documents(endpoints, index, query)
    since = f"from {start:%Y-%m-%d %H:%M:%S} UTC" if start else "all windows"
    return (f"erased {since}: {deleted['sales_summary']} sales_summary rows, {deleted['rejected_summary']}"
            f" rejected_summary rows, {documents} documents")


def _delete_documents(endpoints: Endpoints, index: str, query: dict) -> int:
    """Search and bulk-delete by id: _delete_by_query lives in the reindex module, which a minimal
    distribution (the local runtime's integ-test zip) does not have."""
    from elasticsearch import helpers

    es = endpoints.elasticsearch.client(request_timeout=60)
    try:
        if not es.indices.exists(index=index):
            return 0
        ids = [hit["_id"] for hit in helpers.scan(es, index=index, query={"query": query}, _source=False)]
        if ids:
            helpers.bulk(es, ({"_op_type": "delete", "_index": index, "_id": i} for i in ids), raise_on_error=True)
            es.indices.refresh(index=index)
        return len(ids)
    finally:
        es.close()
