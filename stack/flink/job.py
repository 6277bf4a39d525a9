"""The streamctl aggregation job (PyFlink 1.20, Table API / SQL, no Python UDFs).

Submit it to any Flink 1.20 session cluster that has the Kafka and JDBC connectors on its classpath:

    flink run -m HOST:8081 -d -py job.py -- --config job.json

job.json names the Kafka bootstrap servers and topics, the JDBC URL and credentials, the window size
and the watermark delay (streamctl writes it; see streamctl/provision.py, JobConfig).

What it does:
  transactions (Kafka, JSON)  -- event time = transaction_date (the API's receive time, UTC)
    -> heartbeats dropped (the producer sends one to every partition each second so that the
       watermark, and with it every window, moves on when traffic stops)
    -> records missing a dimension, quantity or total are counted per window in rejected_summary
    -> TUMBLE(event_time, window) GROUP BY category, brand, payment method, currency
    -> PostgreSQL sales_summary (JDBC upsert on the window key)
    -> Kafka sales-aggregated (upsert, keyed by the window key), which the indexer puts into
       Elasticsearch with a deterministic _id
Both sinks are idempotent on the window key, so a restart from a checkpoint overwrites rows with
the same figures instead of doubling them.
"""

from __future__ import annotations

import argparse
import json

from pyflink.table import EnvironmentSettings, TableEnvironment


# The columns both sinks receive: one row per window and (category, brand, payment method, currency).
WINDOW_ROW = """window_start TIMESTAMP(3),
            window_end TIMESTAMP(3),
            category STRING,
            brand STRING,
            payment_method STRING,
            currency STRING,
            transaction_count BIGINT,
            items_sold BIGINT,
            revenue DECIMAL(14, 2),
            avg_ticket DECIMAL(14, 2),
            PRIMARY KEY (window_start, category, brand, payment_method, currency) NOT ENFORCED"""


def sql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def build(t_env: TableEnvironment, cfg: dict) -> None:
    window = f"INTERVAL '{int(cfg['window_seconds'])}' SECOND"
    delay = f"INTERVAL '{int(cfg['watermark_delay_seconds'])}' SECOND"
    kafka = sql_string(cfg["kafka_bootstrap"])

    t_env.execute_sql(f"""
        CREATE TABLE transactions (
            transaction_id STRING,
            product_quantity INT,
            product_category STRING,
            product_brand STRING,
            payment_method STRING,
            currency STRING,
            total_amount DECIMAL(14, 2),
            transaction_date STRING,
            heartbeat BOOLEAN,
            kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
            -- transaction_date is what the API stamped (it also sets the Kafka timestamp to it);
            -- a record whose date cannot be read falls back to its Kafka timestamp, so one bad
            -- record can neither stall nor break the watermark.
            event_time AS COALESCE(
                TO_TIMESTAMP(REPLACE(REPLACE(transaction_date, 'T', ' '), 'Z', ''), 'yyyy-MM-dd HH:mm:ss.SSS'),
                CAST(kafka_ts AS TIMESTAMP(3))),
            WATERMARK FOR event_time AS event_time - {delay}
        ) WITH (
            'connector' = 'kafka',
            'topic' = {sql_string(cfg['topic'])},
            'properties.bootstrap.servers' = {kafka},
            'properties.group.id' = {sql_string(cfg['group_id'])},
            'scan.startup.mode' = 'earliest-offset',
            'format' = 'json',
            'json.ignore-parse-errors' = 'true',
            'json.fail-on-missing-field' = 'false'
        )""")

    t_env.execute_sql(f"""
        CREATE TABLE sales_summary_pg (
            {WINDOW_ROW}
        ) WITH (
            'connector' = 'jdbc',
            'url' = {sql_string(cfg['jdbc_url'])},
            'table-name' = 'sales_summary',
            'username' = {sql_string(cfg['jdbc_user'])},
            'password' = {sql_string(cfg['jdbc_password'])},
            'sink.buffer-flush.interval' = '500ms',
            'sink.buffer-flush.max-rows' = '500',
            'sink.max-retries' = '10'
        )""")

    t_env.execute_sql(f"""
        CREATE TABLE rejected_summary_pg (
            window_start TIMESTAMP(3),
            window_end TIMESTAMP(3),
            rejected_count BIGINT,
            PRIMARY KEY (window_start) NOT ENFORCED
        ) WITH (
            'connector' = 'jdbc',
            'url' = {sql_string(cfg['jdbc_url'])},
            'table-name' = 'rejected_summary',
            'username' = {sql_string(cfg['jdbc_user'])},
            'password' = {sql_string(cfg['jdbc_password'])},
            'sink.buffer-flush.interval' = '500ms',
            'sink.max-retries' = '10'
        )""")

    t_env.execute_sql(f"""
        CREATE TABLE sales_aggregated_kafka (
            {WINDOW_ROW}
        ) WITH (
            'connector' = 'upsert-kafka',
            'topic' = {sql_string(cfg['aggregates_topic'])},
            'properties.bootstrap.servers' = {kafka},
            'key.format' = 'json',
            'key.json.timestamp-format.standard' = 'ISO-8601',
            'value.format' = 'json',
            'value.json.timestamp-format.standard' = 'ISO-8601',
            'value.json.encode.decimal-as-plain-number' = 'true'
        )""")

    t_env.execute_sql("""
        CREATE TEMPORARY VIEW countable AS
        SELECT * FROM transactions
        WHERE heartbeat IS NOT TRUE
          AND product_category IS NOT NULL AND product_brand IS NOT NULL
          AND payment_method IS NOT NULL AND currency IS NOT NULL
          AND product_quantity >= 1 AND total_amount > 0""")

    t_env.execute_sql("""
        CREATE TEMPORARY VIEW rejected AS
        SELECT * FROM transactions
        WHERE heartbeat IS NOT TRUE
          AND NOT (product_category IS NOT NULL AND product_brand IS NOT NULL
                   AND payment_method IS NOT NULL AND currency IS NOT NULL
                   AND product_quantity IS NOT NULL AND product_quantity >= 1
                   AND total_amount IS NOT NULL AND total_amount > 0)""")

    t_env.execute_sql(f"""
        CREATE TEMPORARY VIEW windowed AS
        SELECT window_start, window_end,
               product_category AS category, product_brand AS brand, payment_method, currency,
               COUNT(*) AS transaction_count,
               CAST(SUM(product_quantity) AS BIGINT) AS items_sold,
               CAST(SUM(total_amount) AS DECIMAL(14, 2)) AS revenue,
               CAST(SUM(total_amount) / COUNT(*) AS DECIMAL(14, 2)) AS avg_ticket
        FROM TABLE(TUMBLE(TABLE countable, DESCRIPTOR(event_time), {window}))
        GROUP BY window_start, window_end, product_category, product_brand, payment_method, currency""")

    statements = t_env.create_statement_set()
    statements.add_insert_sql("INSERT INTO sales_summary_pg SELECT * FROM windowed")
    statements.add_insert_sql("INSERT INTO sales_aggregated_kafka SELECT * FROM windowed")
    statements.add_insert_sql(f"""
        INSERT INTO rejected_summary_pg
        SELECT window_start, window_end, COUNT(*) AS rejected_count
        FROM TABLE(TUMBLE(TABLE rejected, DESCRIPTOR(event_time), {window}))
        GROUP BY window_start, window_end""")
    statements.execute()  # detached under `flink run -d`: returns once the job is submitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="job.json written by streamctl")
    args = parser.parse_args()
    with open(args.config) as f:
        cfg = json.load(f)

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    conf.set("pipeline.name", cfg.get("job_name", "streamctl-sales-aggregation"))
    conf.set("table.local-time-zone", "UTC")
    conf.set("parallelism.default", str(cfg.get("parallelism", 1)))
    conf.set("execution.checkpointing.interval", f"{int(cfg['checkpoint_interval_seconds'])}s")
    conf.set("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    conf.set("table.exec.source.idle-timeout", "0 ms")
    build(t_env, cfg)


if __name__ == "__main__":
    main()
