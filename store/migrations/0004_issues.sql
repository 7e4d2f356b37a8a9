-- Issues: error events grouped by fingerprint (docs/OPERATIONS.md, "Issues").
--
-- Every stored error record carries its issue id; the aggregates are updated in the same
-- statement that inserts the records, from the rows actually inserted, so they never drift
-- from what was acknowledged and a replayed batch counts nothing twice.

ALTER TABLE system_logs ADD COLUMN issue text;
CREATE INDEX system_logs_issue_ts ON system_logs (issue, ts DESC) WHERE issue IS NOT NULL;

CREATE TABLE issues (
    id                text        PRIMARY KEY,
    service           text        NOT NULL,
    title             text        NOT NULL,
    culprit           text        NOT NULL,
    -- The worst level seen: 0 DEBUG, 1 INFO, 2 WARNING, 3 ERROR, 4 CRITICAL.
    level             smallint    NOT NULL,
    error_type        text,
    count             bigint      NOT NULL,
    users             bigint      NOT NULL,
    first_seen        timestamptz NOT NULL,
    last_seen         timestamptz NOT NULL,
    status            text        NOT NULL DEFAULT 'unresolved'
        CHECK (status IN ('unresolved', 'resolved', 'ignored')),
    release_first     text,
    release_last      text,
    -- The database's clock: when the first event was committed, when one reopened it.
    created_at        timestamptz NOT NULL,
    regressed_at      timestamptz,
    regressed_in      text,
    status_changed_at timestamptz
);
CREATE INDEX issues_last_seen ON issues (last_seen DESC, id DESC);
CREATE INDEX issues_service_status_last_seen ON issues (service, status, last_seen DESC);
CREATE INDEX issues_created_at ON issues (created_at);
CREATE INDEX issues_regressed_at ON issues (regressed_at) WHERE regressed_at IS NOT NULL;

-- Distinct users per issue: a user is counted when its row is new, so the count is exact
-- with any number of writers.
CREATE TABLE issue_users (
    issue   text NOT NULL,
    user_id text NOT NULL,
    PRIMARY KEY (issue, user_id)
);

-- Events per issue and hour (by the events' ts), kept for 15 days.
CREATE TABLE issue_hours (
    issue text        NOT NULL,
    hour  timestamptz NOT NULL,
    count bigint      NOT NULL,
    PRIMARY KEY (issue, hour)
);
CREATE INDEX issue_hours_hour ON issue_hours (hour);
