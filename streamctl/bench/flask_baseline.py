"""The baseline the producer API is measured against, behaving as the reference project's own
producer does: Flask's development server (threaded), kafka-python with its defaults but acks=1 (the
reference's client version defaulted to it), no key, no validation, flush() on every request.

    python -m streamctl.bench.flask_baseline --port 5099 --bootstrap 127.0.0.1:9092 --topic bench-baseline
"""

from __future__ import annotations

import argparse
import json
import time

from flask import Flask, jsonify, request
from kafka import KafkaProducer

from streamctl.pipeline.contract import format_event_time


def create_app(bootstrap: str, topic: str) -> Flask:
    app = Flask(__name__)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, enable_idempotence=False)

    @app.post("/transaction")
    def transaction():
        record = request.get_json(silent=True) or {}
        record["transaction_date"] = format_event_time(time.time_ns() // 1_000_000)
        producer.send(topic, value=json.dumps(record).encode())
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
