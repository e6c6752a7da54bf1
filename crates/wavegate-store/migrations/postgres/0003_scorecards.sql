-- Go/no-go scorecard item states per plan, versioned like plans: `spec` is
-- {"items": {key: {status, by, at, note}}}.
CREATE TABLE scorecards (
    key         TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    spec        TEXT NOT NULL,
    archived    BIGINT NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE scorecard_versions (
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
CREATE TRIGGER scorecard_versions_append_only BEFORE UPDATE OR DELETE ON scorecard_versions
    FOR EACH ROW EXECUTE FUNCTION wavegate_append_only();
