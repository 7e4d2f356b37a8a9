-- Per-rule state of the alert evaluator (manual resets, where the last one-shot evaluation
-- stopped), and the result of every notification delivery.

CREATE TABLE alert_rules (
    rule       text        PRIMARY KEY,
    state      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert_deliveries (
    id           bigserial   PRIMARY KEY,
    rule         text        NOT NULL,
    group_key    text        NOT NULL DEFAULT '',
    channel      text        NOT NULL,
    delivery     jsonb       NOT NULL,
    delivered_at timestamptz NOT NULL
);
CREATE INDEX alert_deliveries_rule_time ON alert_deliveries (rule, delivered_at DESC, id DESC);

CREATE INDEX system_checks_time ON system_checks (checked_at DESC);
