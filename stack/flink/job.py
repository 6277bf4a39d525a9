"""The streamctl aggregation job (PyFlink 1.20, Table API / SQL and one Java operator, no Python UDFs).

Submit it to any Flink 1.20 session cluster that has the Kafka and JDBC connectors on its classpath:

    flink run -m HOST:8081 -d -py job.py -- --config job.json

with the operator's jar (streamctl/artifacts/job_jar.py compiles it) among job.json's pipeline_jars.
streamctl itself calls submit_detached() in its own process, through PyFlink's Java gateway
(streamctl/flink/gateway.py), with the client's Flink configuration.

job.json names the Kafka bootstrap servers and topics, the JDBC URL and credentials, the window size,
the watermark delay, the event-time tolerance and the retry horizon (streamctl writes it; see
streamctl/flink/config.py, JobConfig).

What it does (streamctl/pipeline/windows.py mirrors every rule for `validate`):
  transactions (Kafka, JSON; the topic stamps each record with its append time)
    -> event time = transaction_date (the API's receive time) when it is exactly the canonical UTC
       form (2026-11-25T18:55:49.123Z) of a real instant within `event_time_tolerance_ms` of the
       time Kafka appended the record; otherwise the append time. The tolerance is under half the
       watermark delay and append times only grow within a partition, so no record can arrive
       behind the watermark: none is dropped as late, whatever a writer puts in it.
    -> heartbeats dropped (the producer sends one to every partition each second so that the
       watermark, and with it every window, moves on when traffic stops)
    -> a record is countable when it has a transaction id and every dimension as storable text
       (1-256 characters, no control character, no unpaired surrogate), a currency of three
       letters A-Z, a quantity in 1..1,000,000 and a total > 0. Every other record, and every
       record that is not a JSON object, is counted per window in rejected_summary.
    -> retries counted once: of the copies of one transaction_id, a copy counts only when no other
       copy has an event time in the `dedup_minutes` before it (nor the same time at an earlier
       place in the topic); the others are counted per window as duplicates in rejected_summary.
       A Java operator keyed by transaction_id decides (stack/flink/java, RetryRule): one state value
       and one event-time timer per id, which clears it one horizon after the id's last copy.
    -> TUMBLE(event_time, window) GROUP BY category, brand, payment method, currency
    -> PostgreSQL sales_summary (JDBC upsert on the window key)
    -> Kafka sales-aggregated (upsert, keyed by the window key), which the indexer puts into
       Elasticsearch with a deterministic _id
Both sinks are idempotent on the window key, so a restart from a checkpoint overwrites rows with
the same figures instead of doubling them. revenue is DECIMAL(38, 2): at 999,999,999,999.99 per
transaction at most, it cannot overflow before one window holds 10^24 transactions.
"""

from __future__ import annotations

import argparse
import datetime
import json

from pyflink.datastream import StreamExecutionEnvironment
from pyflink.java_gateway import get_gateway
from pyflink.table import DataTypes, EnvironmentSettings, Schema, StreamTableEnvironment


# The columns both sinks receive: one row per window and (category, brand, payment method, currency).
WINDOW_ROW = """window_start TIMESTAMP(3),
            window_end TIMESTAMP(3),
            category STRING,
            brand STRING,
            payment_method STRING,
            currency STRING,
            transaction_count BIGINT,
            items_sold BIGINT,
            revenue DECIMAL(38, 2),
            avg_ticket DECIMAL(14, 2),
            PRIMARY KEY (window_start, category, brand, payment_method, currency) NOT ENFORCED"""

# DATE_FORMAT(TO_TIMESTAMP(x)) = x keeps only real instants in exactly this form: TO_TIMESTAMP
# alone reads 2026-02-30 as 2026-02-28 and 24:00 as the next day's midnight.
CANONICAL_DATE = "'yyyy-MM-dd''T''HH:mm:ss.SSS''Z'''"
# What no sink can store: C0 and C1 control characters, DEL, unpaired surrogates.
UNSTORABLE = r"'[\x00-\x1F\x7F-\x9F\x{D800}-\x{DFFF}]'"
MAX_TEXT_CHARS = 256  # code points, as CHAR_LENGTH counts them
MAX_QUANTITY = 1_000_000


def emit_from_literal(epoch_ms: int) -> str:
    """A UTC timestamp literal (the job's local time zone is UTC)."""
    return datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def sql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def storable_text(column: str) -> str:
    return (f"({column} IS NOT NULL AND CHAR_LENGTH({column}) BETWEEN 1 AND {MAX_TEXT_CHARS}"
            f" AND NOT REGEXP({column}, {UNSTORABLE}))")


COUNTABLE = " AND ".join([
    *(storable_text(c) for c in ("transaction_id", "product_category", "product_brand", "payment_method")),
    r"REGEXP(currency, '^[A-Z]{3}\z')",
    f"product_quantity BETWEEN 1 AND {MAX_QUANTITY}",
    "total_amount > 0",
])


def build(t_env: StreamTableEnvironment, cfg: dict) -> list[str]:
    window = f"INTERVAL '{int(cfg['window_seconds'])}' SECOND"
    delay = f"INTERVAL '{int(cfg['watermark_delay_seconds'])}' SECOND"
    tolerance = f"INTERVAL '{int(cfg['event_time_tolerance_ms']) / 1000:.3f}' SECOND"
    horizon = f"INTERVAL '{int(cfg['dedup_minutes'])}' MINUTE"
    stated = f"TO_TIMESTAMP(transaction_date, {CANONICAL_DATE})"
    appended = "CAST(kafka_ts AS TIMESTAMP(3))"

    # TLS and SASL when the cluster asks for them (security.protocol, sasl.*, ssl.truststore.*).
    client_security = "".join(f",\n            'properties.{key}' = {sql_string(value)}"
                              for key, value in sorted(cfg.get("kafka_properties", {}).items()))

    # A replay (`streamctl job replay --from T`) reads the topic from far enough before T to know every
    # earlier copy of a transaction in the horizon, and writes only windows from T on. The filter is
    # always in the plan (emit_from 0 otherwise), so a replayed job and a normal one have the same
    # operators and either restores the other's savepoints.
    read_from_ms = cfg.get("read_from_ms")
    startup = (f"'scan.startup.mode' = 'timestamp', 'scan.startup.timestamp-millis' = '{int(read_from_ms)}'"
               if read_from_ms else "'scan.startup.mode' = 'earliest-offset'")
    emit_from = f"TIMESTAMP '{emit_from_literal(int(cfg.get('emit_from_ms') or 0))}'"

    def kafka_options(group_suffix: str) -> str:
        return f"""'connector' = 'kafka',
            'topic' = {sql_string(cfg['topic'])},
            'properties.bootstrap.servers' = {sql_string(cfg['kafka_bootstrap'])},
            'properties.group.id' = {sql_string(cfg['group_id'] + group_suffix)},
            {startup}{client_security}"""

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
            kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
            kafka_partition INT METADATA FROM 'partition' VIRTUAL,
            event_time AS CASE
                WHEN DATE_FORMAT({stated}, {CANONICAL_DATE}) = transaction_date
                 AND {stated} BETWEEN {appended} - {tolerance} AND {appended} + {tolerance}
                THEN {stated} ELSE {appended} END,
            WATERMARK FOR event_time AS event_time - {delay}
        ) WITH (
            {kafka_options('')},
            'format' = 'json',
            'json.ignore-parse-errors' = 'true',
            'json.fail-on-missing-field' = 'false'
        )""")

    # The same records once more, as text: the JSON format skips what it cannot parse without a
    # trace, so those records are counted from here (their event time is the append time).
    t_env.execute_sql(f"""
        CREATE TABLE transactions_raw (
            payload STRING,
            kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
            event_time AS CAST(kafka_ts AS TIMESTAMP(3)),
            WATERMARK FOR event_time AS event_time - {delay}
        ) WITH (
            {kafka_options('-raw')},
            'format' = 'raw'
        )""")

    def jdbc_sink(name: str, table: str, columns: str) -> None:
        t_env.execute_sql(f"""
            CREATE TABLE {name} (
                {columns}
            ) WITH (
                'connector' = 'jdbc',
                'url' = {sql_string(cfg['jdbc_url'])},
                'table-name' = '{table}',
                'username' = {sql_string(cfg['jdbc_user'])},
                'password' = {sql_string(cfg['jdbc_password'])},
                'sink.buffer-flush.interval' = '200ms',
                'sink.buffer-flush.max-rows' = '500',
                'sink.max-retries' = '10'
            )""")

    jdbc_sink("sales_summary_pg", "sales_summary", WINDOW_ROW)
    jdbc_sink("rejected_summary_pg", "rejected_summary", """window_start TIMESTAMP(3),
                window_end TIMESTAMP(3),
                rejected_count BIGINT,
                duplicate_count BIGINT,
                PRIMARY KEY (window_start) NOT ENFORCED""")

    t_env.execute_sql(f"""
        CREATE TABLE sales_aggregated_kafka (
            {WINDOW_ROW}
        ) WITH (
            'connector' = 'upsert-kafka',
            'topic' = {sql_string(cfg['aggregates_topic'])},
            'properties.bootstrap.servers' = {sql_string(cfg['kafka_bootstrap'])}{client_security},
            'key.format' = 'json',
            'key.json.timestamp-format.standard' = 'ISO-8601',
            'value.format' = 'json',
            'value.json.timestamp-format.standard' = 'ISO-8601',
            'value.json.encode.decimal-as-plain-number' = 'true'
        )""")

    t_env.execute_sql(f"""
        CREATE TEMPORARY VIEW countable AS
        SELECT transaction_id, product_category AS category, product_brand AS brand, payment_method, currency,
               product_quantity, total_amount, event_time, kafka_offset * 1024 + kafka_partition AS topic_position
        FROM transactions
        WHERE heartbeat IS NOT TRUE AND {COUNTABLE}""")

    t_env.execute_sql(f"""
        CREATE TEMPORARY VIEW rejected AS
        SELECT event_time FROM transactions
        WHERE heartbeat IS NOT TRUE AND ({COUNTABLE}) IS NOT TRUE""")

    t_env.execute_sql("""
        CREATE TEMPORARY VIEW unreadable AS
        SELECT event_time FROM transactions_raw WHERE payload IS NULL OR payload IS NOT JSON OBJECT""")

    # Retries: a copy counts when no other copy of its id lies in the horizon before it, neither at an
    # earlier event time nor at the same time earlier in the topic. A Java operator (stack/flink/java,
    # RetryRule) decides each copy as it arrives with one keyed state value and one timer per id, and
    # emits signed deltas: counted +1, or duplicate +1, and when a copy arriving out of order changes an
    # earlier decision, that copy's correction. The windows sum the deltas.
    countable = t_env.sql_query("""
        SELECT transaction_id, category, brand, payment_method, currency, product_quantity,
               CAST(total_amount AS STRING) AS amount, topic_position, event_time
        FROM countable""")
    decided = get_gateway().jvm.streamctl.job.RetryRule.decide(
        t_env._j_tenv.toDataStream(countable._j_table), int(cfg['dedup_minutes']) * 60_000)
    t_env._j_tenv.createTemporaryView("decided", decided, Schema.new_builder()
                                      .column("category", DataTypes.STRING())
                                      .column("brand", DataTypes.STRING())
                                      .column("payment_method", DataTypes.STRING())
                                      .column("currency", DataTypes.STRING())
                                      .column("product_quantity", DataTypes.INT())
                                      .column("amount", DataTypes.STRING())
                                      .column("counted", DataTypes.BIGINT())
                                      .column("duplicate", DataTypes.BIGINT())
                                      .column("event_time", DataTypes.TIMESTAMP(3))
                                      .watermark("event_time", "SOURCE_WATERMARK()")
                                      .build()._j_schema)

    # The deltas of one group sum to its counted copies; a group whose deltas cancel out held none.
    t_env.execute_sql(f"""
        CREATE TEMPORARY VIEW windowed AS
        SELECT window_start, window_end, category, brand, payment_method, currency,
               SUM(counted) AS transaction_count,
               SUM(CAST(product_quantity AS BIGINT) * counted) AS items_sold,
               SUM(CAST(amount AS DECIMAL(14, 2)) * counted) AS revenue,
               CAST(SUM(CAST(amount AS DECIMAL(14, 2)) * counted) / NULLIF(SUM(counted), 0) AS DECIMAL(14, 2))
                   AS avg_ticket
        FROM TABLE(TUMBLE(TABLE decided, DESCRIPTOR(event_time), {window}))
        GROUP BY window_start, window_end, category, brand, payment_method, currency
        HAVING SUM(counted) > 0""")

    t_env.execute_sql("""
        CREATE TEMPORARY VIEW set_aside AS
        SELECT event_time, CAST(1 AS BIGINT) AS rejected, CAST(0 AS BIGINT) AS duplicate FROM rejected
        UNION ALL SELECT event_time, CAST(1 AS BIGINT) AS rejected, CAST(0 AS BIGINT) AS duplicate FROM unreadable
        UNION ALL SELECT event_time, CAST(0 AS BIGINT) AS rejected, duplicate FROM decided WHERE duplicate <> 0""")

    t_env.execute_sql(f"CREATE TEMPORARY VIEW emitted AS SELECT * FROM windowed WHERE window_start >= {emit_from}")
    return ["INSERT INTO sales_summary_pg SELECT * FROM emitted",
            "INSERT INTO sales_aggregated_kafka SELECT * FROM emitted",
            f"""
        INSERT INTO rejected_summary_pg
        SELECT window_start, window_end, SUM(rejected), SUM(duplicate)
        FROM TABLE(TUMBLE(TABLE set_aside, DESCRIPTOR(event_time), {window}))
        GROUP BY window_start, window_end
        HAVING window_start >= {emit_from} AND (SUM(rejected) > 0 OR SUM(duplicate) > 0)"""]


def environment(flink_configuration: dict[str, str] | None) -> StreamTableEnvironment:
    """Under `flink run` the client's environment; else one that submits with `flink_configuration`
    (execution.target remote, the REST address, the savepoint to restore, ...)."""
    if flink_configuration is None:
        env = StreamExecutionEnvironment.get_execution_environment()
    else:
        jvm = get_gateway().jvm
        j_conf = jvm.org.apache.flink.configuration.Configuration()
        for key, value in flink_configuration.items():
            j_conf.setString(key, value)
        env = StreamExecutionEnvironment(jvm.org.apache.flink.streaming.api.environment.StreamExecutionEnvironment(j_conf))
    return StreamTableEnvironment.create(env, EnvironmentSettings.in_streaming_mode())


def submit_detached(cfg: dict, flink_configuration: dict[str, str] | None = None) -> str:
    """Plan the job and submit it; returns its id once the cluster accepted it (detached)."""
    t_env = environment(flink_configuration)
    conf = t_env.get_config()
    conf.set("pipeline.name", cfg.get("job_name", "streamctl-sales-aggregation"))
    conf.set("table.local-time-zone", "UTC")
    # Operator ids derived from the topology, as before: the SQL operators keep the ids savepoints hold.
    conf.set("table.exec.uid.generation", "DISABLED")
    # The job's own operator (RetryRule), and the connectors where the cluster's lib/ lacks them: shipped
    # with the job. Set before build(), which loads the operator's class in this client.
    if cfg.get("pipeline_jars"):
        conf.set("pipeline.jars", ";".join(cfg["pipeline_jars"]))
    conf.set("parallelism.default", str(cfg.get("parallelism", 1)))
    conf.set("execution.checkpointing.interval", f"{int(cfg['checkpoint_interval_seconds'])}s")
    conf.set("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    conf.set("table.exec.source.idle-timeout", "0 ms")
    # The retry horizon holds about 750 bytes per transaction id for 1.5 horizons (measured): on the
    # heap that is ~1 GB at a few thousand ids a second, so keyed state lives in RocksDB (managed
    # memory, spilling to disk) with incremental checkpoints.
    conf.set("state.backend.type", "rocksdb")
    conf.set("state.backend.incremental", "true")
    # RocksDB's default 64 MB write buffer means 8 MB arena blocks per column family: more than a slot's
    # share of managed memory allows, so every few writes forced a flush (28,000 SST files in three
    # minutes, measured) and the dedup operator ran at ~800 records/s. 4 MB buffers and bloom filters
    # (most lookups are for a transaction id not seen yet) took a 200,000-record replay to ~7,000/s.
    conf.set("state.backend.rocksdb.writebuffer.size", "4mb")
    conf.set("state.backend.rocksdb.use-bloom-filter", "true")
    # Each id's first lookup misses, so it reads the bloom filter of every SST file. Unpartitioned, a file
    # holding a million ids has one 1.2 MB filter block, which the slot's share of managed memory did not
    # keep cached: every lookup read it again and verified it (measured: ~700 us of CPU per record, the
    # replay slowing to 2,450 records/s with 1.5 million ids in the state). Partitioned, a lookup loads
    # one small partition of it.
    conf.set("state.backend.rocksdb.memory.partitioned-index-filters", "true")
    statements = t_env.create_statement_set()
    for insert in build(t_env, cfg):
        statements.add_insert_sql(insert)
    client = statements.execute().get_job_client()  # detached: returns once the job is submitted
    return str(client.get_job_id()) if client is not None else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="job.json written by streamctl")
    args = parser.parse_args()
    with open(args.config) as f:
        cfg = json.load(f)
    submit_detached(cfg)




if __name__ == "__main__":
    main()
