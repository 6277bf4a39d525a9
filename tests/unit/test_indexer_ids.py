"""Elasticsearch _ids: bounded and collision-free whatever the window key holds."""

from __future__ import annotations

import json
from streamctl.pipeline.indexer import decode_json, document_id, to_action

KEY = {"window_start": "2026-11-25T10:00:00", "category": "A", "brand": "B", "payment_method": "Pix",
       "currency": "BRL"}


def test_keys_that_a_separator_would_join_alike_get_different_ids():
    assert document_id({**KEY, "category": "A|B", "brand": "C"}) != document_id({**KEY, "category": "A", "brand": "B|C"})


def test_an_id_stays_within_elasticsearchs_512_bytes_for_the_longest_key():
    longest = {**KEY, "category": "😀" * 256, "brand": "😀" * 256, "payment_method": "😀" * 256}
    assert len(document_id(longest).encode()) == 64


def test_the_id_is_deterministic_so_a_replay_overwrites():
    assert document_id(dict(KEY)) == document_id(dict(reverse for reverse in reversed(list(KEY.items()))))


def test_revenue_beyond_a_doubles_precision_reaches_the_document_exact():
    raw = json.dumps({**KEY, "window_end": "2026-11-25T10:01:00", "transaction_count": 3, "items_sold": 3})
    value = decode_json((raw[:-1] + ',"revenue":99999999999999999999.99,"avg_ticket":1.25}').encode())
    action = to_action("idx", KEY, value)
    assert action["_source"]["revenue"] == "99999999999999999999.99"
