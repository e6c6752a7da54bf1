-- Server-wide settings (the global freeze), versioned like plans: `spec` is
-- the setting's document (freeze: {"active", "reason", "by", "at"}).
CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    spec        TEXT NOT NULL,
    archived    INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE setting_versions (
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
CREATE TRIGGER setting_versions_no_update BEFORE UPDATE ON setting_versions
BEGIN SELECT RAISE(ABORT, 'setting_versions is append-only'); END;
CREATE TRIGGER setting_versions_no_delete BEFORE DELETE ON setting_versions
BEGIN SELECT RAISE(ABORT, 'setting_versions is append-only'); END;
