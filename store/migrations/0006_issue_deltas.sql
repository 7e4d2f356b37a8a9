-- Issues without row locks in the write path (issue 23).
--
-- A batch's error events used to update their `issues` and `issue_hours` rows in the
-- batch's own transaction: each update held its row until the commit's WAL flush, so
-- concurrent batches of the same issues committed one after another. A batch now appends
-- what it adds to each issue here, in the same statement as its records (so nothing is
-- counted that was not stored, and a replay adds nothing); the store folds the deltas into
-- `issues` and `issue_hours` every second and before every read of issues, deleting them
-- in the same statement. No indexes: they are only appended and read whole.

CREATE TABLE issue_deltas (
    -- Append order: the first delta of a new issue gives its title and culprit.
    seq           bigint      GENERATED ALWAYS AS IDENTITY,
    issue         text        NOT NULL,
    service       text        NOT NULL,
    title         text        NOT NULL,
    culprit       text        NOT NULL,
    level         smallint    NOT NULL,
    error_type    text,
    count         bigint      NOT NULL,
    -- Users of this issue first seen by this batch (rows it inserted into issue_users).
    users         bigint      NOT NULL,
    first_seen    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    release_first text,
    release_last  text,
    -- The release of the batch's first event of the issue (a regression's `regressed_in`).
    release_head  text
);

CREATE TABLE issue_hour_deltas (
    issue text        NOT NULL,
    hour  timestamptz NOT NULL,
    count bigint      NOT NULL
);
