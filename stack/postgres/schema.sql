-- sales_summary: one row per 1-minute window and (category, brand, payment method, currency).
-- Written by the Flink job with JDBC upserts on the primary key, so a replay overwrites.
-- Applied idempotently by `streamctl up`.
CREATE TABLE IF NOT EXISTS sales_summary (
    window_start      timestamptz    NOT NULL,
    window_end        timestamptz    NOT NULL,
    category          text           NOT NULL,
    brand             text           NOT NULL,
    payment_method    text           NOT NULL,
    currency          char(3)        NOT NULL,
    transaction_count bigint         NOT NULL,
    items_sold        bigint         NOT NULL,
    revenue           numeric(38, 2) NOT NULL,  -- no window can overflow it (see stack/flink/job.py)
    avg_ticket        numeric(14, 2) NOT NULL,
    updated_at        timestamptz    NOT NULL DEFAULT now(),
    PRIMARY KEY (window_start, category, brand, payment_method, currency)
);

-- Stacks created before revenue could exceed NUMERIC(14, 2); a no-op when it is already (38, 2).
ALTER TABLE sales_summary ALTER COLUMN revenue TYPE numeric(38, 2);

-- The dashboards ask "latest windows", "by category over time", "by payment method over time".
CREATE INDEX IF NOT EXISTS sales_summary_window_end_idx ON sales_summary (window_end DESC);
CREATE INDEX IF NOT EXISTS sales_summary_category_idx ON sales_summary (category, window_start);
CREATE INDEX IF NOT EXISTS sales_summary_payment_idx ON sales_summary (payment_method, window_start);

-- Per window: records in the topic the job could not count (not JSON, missing or unstorable
-- fields), and later copies of a transaction id it counted once (client retries).
CREATE TABLE IF NOT EXISTS rejected_summary (
    window_start    timestamptz NOT NULL PRIMARY KEY,
    window_end      timestamptz NOT NULL,
    rejected_count  bigint      NOT NULL,
    duplicate_count bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE rejected_summary ADD COLUMN IF NOT EXISTS duplicate_count bigint NOT NULL DEFAULT 0;
