-- Daily record quotas per ingest key (`daily_quota`): each node adds the records it counted
-- since its last flush (every second) and reads back every node's total for the day, so a
-- quota holds across nodes and restarts. Rows older than a week are deleted at start.

CREATE TABLE ingest_quotas (
    key_name text   NOT NULL,
    day      date   NOT NULL,
    records  bigint NOT NULL,
    PRIMARY KEY (key_name, day)
);
