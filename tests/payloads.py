"""Payloads several test modules send."""

from __future__ import annotations

import uuid


def reference_payload() -> dict:
    """Exactly what the reference load generator sends."""
    return {
        "transaction_id": str(uuid.uuid4()),
        "product_id": 42,
        "product_name": "Galaxy S24",
        "product_category": "Electronics",
        "product_price": 74.07,
        "product_quantity": 5,
        "product_brand": "Samsung",
        "total_amount": 370.34999999999997,
        "currency": "BRL",
        "customer_id": 1234,
        "transaction_date": "now",
        "payment_method": "Pix",
    }
