"""The producer API's OpenAPI 3.0 document, built from the contract's own limits."""

from __future__ import annotations

from typing import Any

from streamctl.pipeline.contract import MAX_QUANTITY, TEXT_LIMITS


def transaction_schema() -> dict[str, Any]:
    text = {name: {"type": "string", "minLength": 1, "maxLength": limit} for name, limit in TEXT_LIMITS.items()}
    return {
        "type": "object",
        "description": "Unknown extra fields are accepted and dropped. transaction_date is ignored: "
                       "the API stamps the receive time (UTC, milliseconds), which is the event time.",
        "required": ["transaction_id", "product_id", "product_name", "product_category", "product_price",
                     "product_quantity", "product_brand", "total_amount", "currency", "customer_id",
                     "payment_method"],
        "properties": {
            "transaction_id": {"type": "string", "format": "uuid"},
            "product_id": {"type": "integer", "minimum": 1},
            "customer_id": {"type": "integer", "minimum": 1},
            "product_quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
            "product_price": {"type": "number", "exclusiveMinimum": 0},
            "total_amount": {"type": "number", "exclusiveMinimum": 0,
                             "description": "product_price x product_quantity within 0.01; stored rounded to cents"},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "transaction_date": {"type": "string", "description": "ignored"},
            **text,
        },
    }


def openapi_document(max_body_bytes: int, max_batch_records: int) -> dict[str, Any]:
    error = {"type": "object", "properties": {"error": {"type": "string"},
                                              "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}
    json_error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    common = {
        "400": {"description": "invalid input; `fields` names each invalid field", "content": json_error},
        "413": {"description": f"body over {max_body_bytes} bytes", "content": json_error},
        "415": {"description": "wrong Content-Type", "content": json_error},
        "503": {"description": "Kafka unavailable; see Retry-After", "content": json_error},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "streamctl producer API", "version": "1"},
        "paths": {
            "/transaction": {"post": {
                "summary": "Publish one transaction; 201 means it is durably in Kafka (acks=all).",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Transaction"}}}},
                "responses": {"201": {"description": "accepted"}, **common},
            }},
            "/transactions": {"post": {
                "summary": f"Publish a batch of at most {max_batch_records} transactions, with per-record results.",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"type": "array", "maxItems": max_batch_records,
                                                    "items": {"$ref": "#/components/schemas/Transaction"}}},
                    "application/x-ndjson": {"schema": {"type": "string"}}}},
                "responses": {"200": {"description": "per-record results; every accepted record is in Kafka"},
                              **common},
            }},
            "/health": {"get": {"summary": "200 {\"status\": \"OK\"} when Kafka takes writes",
                                "responses": {"200": {"description": "healthy"},
                                              "503": {"description": "Kafka unreachable"}}}},
            "/metrics": {"get": {"summary": "Prometheus counters", "responses": {"200": {"description": "text"}}}},
        },
        "components": {"schemas": {"Transaction": transaction_schema(), "Error": error}},
    }
