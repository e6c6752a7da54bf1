-- Go/no-go scorecard item states per plan, versioned like plans: `spec` is
-- {"items": {key: {status, by, at, note}}}.
CREATE TABLE scorecards (
    key         TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    spec        TEXT NOT NULL,
    archived    INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE scorecard_versions (
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
CREATE TRIGGER scorecard_versions_no_update BEFORE UPDATE ON scorecard_versions
BEGIN SELECT RAISE(ABORT, 'scorecard_versions is append-only'); END;
CREATE TRIGGER scorecard_versions_no_delete BEFORE DELETE ON scorecard_versions
BEGIN SELECT RAISE(ABORT, 'scorecard_versions is append-only'); END;
