-- A delivery is one target hearing one event at one audit sequence number: an audit checkpoint
-- (event `checkpoint`) of the entry a rollout event reports goes to the same target too.
CREATE TABLE notify_deliveries_by_event (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    audit_seq    INTEGER NOT NULL,
    target       TEXT NOT NULL,
    audience     TEXT NOT NULL,
    event        TEXT NOT NULL,
    rollout      TEXT NOT NULL,
    environment  TEXT NOT NULL,
    status       TEXT NOT NULL,     -- pending | delivered | failed
    attempts     INTEGER NOT NULL,
    last_error   TEXT,
    http_status  INTEGER,
    next_at      TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (audit_seq, target, event)
);
INSERT INTO notify_deliveries_by_event
    (id, audit_seq, target, audience, event, rollout, environment, status, attempts, last_error,
     http_status, next_at, payload, created_at, updated_at)
SELECT id, audit_seq, target, audience, event, rollout, environment, status, attempts, last_error,
       http_status, next_at, payload, created_at, updated_at
FROM notify_deliveries;
DROP TABLE notify_deliveries;
ALTER TABLE notify_deliveries_by_event RENAME TO notify_deliveries;
CREATE INDEX notify_deliveries_due ON notify_deliveries (status, next_at);
