-- Hourly rollups for /logs/stats windows beyond a day (docs/OPERATIONS.md, "Stats").
--
-- The statement that inserts a batch appends its counts per hour and key, from the rows it
-- actually inserted, to `log_rollup_deltas` (no index, no row lock: an upsert here would
-- hold its row until the commit's WAL flush and make concurrent batches of the same hour
-- and key take turns); the store folds them into `log_rollups` every two seconds, and
-- reads add the deltas not folded yet. Hours past retention are deleted.

CREATE TABLE log_rollups (
    hour    timestamptz NOT NULL,
    service text        NOT NULL,
    level   text        NOT NULL,
    event   text        NOT NULL,
    -- `meta.release` when it is a string, else ''.
    release text        NOT NULL,
    -- `meta.count` times `meta.sample_weight` summed, capped at the largest bigint.
    count   bigint      NOT NULL,
    -- Leading with the hour: windows, the fold's upserts and retention all read by hour.
    PRIMARY KEY (hour, service, level, event, release)
);

CREATE TABLE log_rollup_deltas (
    hour    timestamptz NOT NULL,
    service text        NOT NULL,
    level   text        NOT NULL,
    event   text        NOT NULL,
    release text        NOT NULL,
    count   bigint      NOT NULL
);
