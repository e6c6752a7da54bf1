-- People gates: the wave each user was first served in (adoption per wave), feedback that
-- closes (a blocker flag, a status with its note and the version that fixed it), and
-- incidents and support tickets (with the arm of each live rollout they were attributed to).
ALTER TABLE adoption_users ADD COLUMN first_wave BIGINT NOT NULL DEFAULT 0;
ALTER TABLE feedback ADD COLUMN blocker BIGINT NOT NULL DEFAULT 0;
ALTER TABLE feedback ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
ALTER TABLE feedback ADD COLUMN resolution TEXT;
ALTER TABLE feedback ADD COLUMN fixed_in TEXT;
ALTER TABLE feedback ADD COLUMN closed_at TEXT;
ALTER TABLE feedback ADD COLUMN closed_by TEXT;
CREATE TABLE incidents (
    id          BIGSERIAL PRIMARY KEY,
    source      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    service     TEXT NOT NULL,
    user_key    TEXT,
    title       TEXT NOT NULL,
    at          TEXT NOT NULL,
    principal   TEXT NOT NULL,
    UNIQUE (source, external_id)
);
CREATE INDEX incidents_service ON incidents (service, at);
CREATE TABLE incident_arms (
    incident BIGINT NOT NULL,
    rollout  TEXT NOT NULL,
    wave     BIGINT NOT NULL,
    arm      TEXT NOT NULL,
    severity TEXT NOT NULL,
    PRIMARY KEY (incident, rollout)
);
CREATE INDEX incident_arms_rollout ON incident_arms (rollout, wave);
