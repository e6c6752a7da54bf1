-- wavegate schema (PostgreSQL): the same tables as the SQLite store's migrations 0001-0007,
-- with the same column meanings. Timestamps are RFC 3339 text (UTC, milliseconds), JSON is
-- stored as its exact text (the audit chain hashes stored bytes), so a backup moves between
-- the two stores unchanged.

CREATE TABLE environments (
    name        TEXT PRIMARY KEY,
    position    BIGINT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE flags (
    key         TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    spec        TEXT NOT NULL,
    archived    BIGINT NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE flag_versions (
    key         TEXT NOT NULL,
    version     BIGINT NOT NULL,
    spec        TEXT NOT NULL,
    archived    BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    reason      TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (key, version)
);

CREATE TABLE segments (
    key         TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    spec        TEXT NOT NULL,
    archived    BIGINT NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE segment_versions (
    key         TEXT NOT NULL,
    version     BIGINT NOT NULL,
    spec        TEXT NOT NULL,
    archived    BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    reason      TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (key, version)
);

CREATE TABLE plans (
    key         TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    spec        TEXT NOT NULL,
    archived    BIGINT NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE plan_versions (
    key         TEXT NOT NULL,
    version     BIGINT NOT NULL,
    spec        TEXT NOT NULL,
    archived    BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    reason      TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (key, version)
);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    hash         TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    environments TEXT NOT NULL,
    principal    TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    revoked_at   TEXT
);

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    canonical  TEXT NOT NULL,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target, seq);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('revision', 0);

INSERT INTO environments (name, position, created_at) VALUES
    ('dev', 1, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
    ('staging', 2, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
    ('prod', 3, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));

CREATE TABLE rollouts (
    id           TEXT PRIMARY KEY,
    plan         TEXT NOT NULL,
    flag         TEXT NOT NULL,
    environment  TEXT NOT NULL,
    state        TEXT NOT NULL,
    rev          BIGINT NOT NULL,
    doc          TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX rollouts_flag ON rollouts (flag, environment, state);
-- A flag version covers every environment, so at most one rollout per flag may be live.
CREATE UNIQUE INDEX rollouts_one_live_per_flag ON rollouts (flag) WHERE state IN ('running', 'paused');

CREATE TABLE verdicts (
    id        BIGSERIAL PRIMARY KEY,
    rollout   TEXT NOT NULL,
    wave      BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    verdict   TEXT NOT NULL,
    report    TEXT NOT NULL,
    at        TEXT NOT NULL
);
CREATE INDEX verdicts_rollout ON verdicts (rollout, id);

CREATE TABLE aggregates (
    rollout   TEXT NOT NULL,
    wave      BIGINT NOT NULL,
    arm       TEXT NOT NULL,
    metric    TEXT NOT NULL,
    n         DOUBLE PRECISION NOT NULL,
    sum       DOUBLE PRECISION NOT NULL,
    sumsq     DOUBLE PRECISION NOT NULL,
    last_at   TEXT NOT NULL,
    PRIMARY KEY (rollout, wave, arm, metric)
);

CREATE TABLE sketches (
    rollout  TEXT NOT NULL,
    wave     BIGINT NOT NULL,
    arm      TEXT NOT NULL,
    metric   TEXT NOT NULL,
    counts   TEXT NOT NULL,
    PRIMARY KEY (rollout, wave, arm, metric)
);

CREATE TABLE drills (
    id            BIGSERIAL PRIMARY KEY,
    plan          TEXT NOT NULL,
    plan_version  BIGINT NOT NULL,
    scenario      TEXT NOT NULL,
    passed        BIGINT NOT NULL,
    report        TEXT NOT NULL,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL
);
CREATE INDEX drills_plan ON drills (plan, plan_version);

-- Versions and the audit log are append-only.
CREATE FUNCTION wavegate_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION wavegate_append_only();
CREATE TRIGGER flag_versions_append_only BEFORE UPDATE OR DELETE ON flag_versions
    FOR EACH ROW EXECUTE FUNCTION wavegate_append_only();
CREATE TRIGGER segment_versions_append_only BEFORE UPDATE OR DELETE ON segment_versions
    FOR EACH ROW EXECUTE FUNCTION wavegate_append_only();
CREATE TRIGGER plan_versions_append_only BEFORE UPDATE OR DELETE ON plan_versions
    FOR EACH ROW EXECUTE FUNCTION wavegate_append_only();

-- Controller leadership (fencing epoch); the lock itself is a session advisory lock.
CREATE TABLE leader (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    epoch   BIGINT NOT NULL,
    holder  TEXT NOT NULL,
    since   TEXT NOT NULL
);
INSERT INTO leader (id, epoch, holder, since) VALUES (1, 0, '', '');
