-- The Faultline store: records, system checks, alert state.

-- One row per record, partitioned by day on `ts` (partitions are created ahead of time by
-- the server and dropped whole by retention). Records whose `ts` is far in the past or the
-- future land in the default partition instead of failing.
CREATE TABLE system_logs (
    id          uuid        NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    service     text        NOT NULL,
    level       text        NOT NULL
        CHECK (level IN ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')),
    event       text        NOT NULL,
    message     text        NOT NULL,
    meta        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- A partitioned table's keys must include the partition key; a retried record carries
    -- the same ts and id, so this is what makes replays idempotent. Leading with ts makes
    -- inserts append at the right edge of the index (client ids may be random v4) and lets
    -- the key serve "newest first" scans, so no separate ts index is kept.
    PRIMARY KEY (ts, id)
) PARTITION BY RANGE (ts);

CREATE TABLE system_logs_default PARTITION OF system_logs DEFAULT;

-- The indexes the API's queries use (see docs/OPERATIONS.md, "PostgreSQL").
CREATE INDEX system_logs_service_level_ts ON system_logs (service, level, ts DESC);
CREATE INDEX system_logs_event_ts ON system_logs (event, ts DESC);
CREATE INDEX system_logs_user_ts ON system_logs ((meta ->> 'user'), ts DESC);
CREATE INDEX system_logs_meta ON system_logs USING gin (meta jsonb_path_ops);

-- Results of alert rules and health checks.
CREATE TABLE system_checks (
    id         bigserial   PRIMARY KEY,
    rule       text        NOT NULL,
    status     text        NOT NULL,
    detail     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    checked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX system_checks_rule_time ON system_checks (rule, checked_at DESC);

-- The alert evaluator's state per rule and group, so it survives restarts and leader changes.
CREATE TABLE alert_state (
    rule       text        NOT NULL,
    group_key  text        NOT NULL DEFAULT '',
    state      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule, group_key)
);
