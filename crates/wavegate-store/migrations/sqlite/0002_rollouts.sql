-- Plans (versioned like flags), rollouts, verdicts and event aggregates (SQLite).

CREATE TABLE plans (
    key         TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    spec        TEXT NOT NULL,
    archived    INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE plan_versions (
    key         TEXT NOT NULL,
    version     INTEGER NOT NULL,
    spec        TEXT NOT NULL,
    archived    INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    reason      TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (key, version)
);
CREATE TRIGGER plan_versions_no_update BEFORE UPDATE ON plan_versions
BEGIN SELECT RAISE(ABORT, 'plan_versions is append-only'); END;
CREATE TRIGGER plan_versions_no_delete BEFORE DELETE ON plan_versions
BEGIN SELECT RAISE(ABORT, 'plan_versions is append-only'); END;

-- One row per rollout; `doc` is the state machine's stored form, `rev` guards against lost
-- updates (every write names the revision it read).
CREATE TABLE rollouts (
    id           TEXT PRIMARY KEY,
    plan         TEXT NOT NULL,
    flag         TEXT NOT NULL,
    environment  TEXT NOT NULL,
    state        TEXT NOT NULL,
    rev          INTEGER NOT NULL,
    doc          TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX rollouts_flag ON rollouts (flag, environment, state);
-- At most one live rollout per flag and environment.
CREATE UNIQUE INDEX rollouts_one_live ON rollouts (flag, environment) WHERE state IN ('running', 'paused');

CREATE TABLE verdicts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout   TEXT NOT NULL,
    wave      INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    verdict   TEXT NOT NULL,
    report    TEXT NOT NULL,
    at        TEXT NOT NULL
);
CREATE INDEX verdicts_rollout ON verdicts (rollout, id);

-- Mergeable sufficient statistics per rollout × wave × arm × metric.
CREATE TABLE aggregates (
    rollout   TEXT NOT NULL,
    wave      INTEGER NOT NULL,
    arm       TEXT NOT NULL,
    metric    TEXT NOT NULL,
    n         REAL NOT NULL,
    sum       REAL NOT NULL,
    sumsq     REAL NOT NULL,
    last_at   TEXT NOT NULL,
    PRIMARY KEY (rollout, wave, arm, metric)
);
