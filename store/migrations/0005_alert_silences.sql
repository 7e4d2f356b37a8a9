-- Silences of the alert evaluator: while active, alerts their matchers match send nothing.
-- Written by whichever node's API made or expired one, read by the leader every evaluation
-- interval, so they survive restarts and leader changes. Expired ones are kept a week.

CREATE TABLE alert_silences (
    id         text        PRIMARY KEY,
    silence    jsonb       NOT NULL,
    ends_at    timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_silences_ends ON alert_silences (ends_at);
