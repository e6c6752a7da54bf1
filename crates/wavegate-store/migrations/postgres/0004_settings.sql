-- Server-wide settings (the global freeze), versioned like plans: `spec` is
-- the setting's document (freeze: {"active", "reason", "by", "at"}).
CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    spec        TEXT NOT NULL,
    archived    BIGINT NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE setting_versions (
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
CREATE TRIGGER setting_versions_append_only BEFORE UPDATE OR DELETE ON setting_versions
    FOR EACH ROW EXECUTE FUNCTION wavegate_append_only();
