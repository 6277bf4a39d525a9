"""The baseline the producer API is measured against: the reference design's Flask development
server (threaded), validating the same contract and flushing Kafka on every request.

    python -m streamctl.bench.flask_baseline --port 5099 --bootstrap 127.0.0.1:9092 --topic bench-baseline
"""

from __future__ import annotations

import argparse
import json
import time

from flask import Flask, jsonify, request
from kafka import KafkaProducer

from streamctl.pipeline.contract import format_event_time, validate_transaction


def create_app(bootstrap: str, topic: str) -> Flask:
    app = Flask(__name__)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)

    @app.post("/transaction")
    def transaction():
        received_ms = time.time_ns() // 1_000_000
        record, errors = validate_transaction(request.get_json(silent=True), format_event_time(received_ms))
        if record is None:
            return jsonify({"error": "invalid transaction", "fields": errors}), 400
        producer.send(topic, key=record["transaction_id"].encode(), value=json.dumps(record).encode(),
                      timestamp_ms=received_ms)
        producer.flush()
        return jsonify({"status": "accepted"}), 201

    @app.get("/health")
    def health():
        return jsonify({"status": "OK"})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    args = parser.parse_args()
    create_app(args.bootstrap, args.topic).run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
