-- Notification targets (the server owns the spec's shape) and the delivery log.
CREATE TABLE notify_targets (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    since_seq   BIGINT NOT NULL,   -- audit entries after this one are notified
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE notify_deliveries (
    id           BIGSERIAL PRIMARY KEY,
    audit_seq    BIGINT NOT NULL,
    target       TEXT NOT NULL,
    audience     TEXT NOT NULL,
    event        TEXT NOT NULL,
    rollout      TEXT NOT NULL,
    environment  TEXT NOT NULL,
    status       TEXT NOT NULL,     -- pending | delivered | failed
    attempts     BIGINT NOT NULL,
    last_error   TEXT,
    http_status  BIGINT,
    next_at      TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (audit_seq, target)
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (status, next_at);
