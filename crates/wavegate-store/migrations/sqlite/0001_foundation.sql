-- wavegate foundation schema (SQLite).

CREATE TABLE environments (
    name        TEXT PRIMARY KEY,
    position    INTEGER NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

-- Head rows: the current version of each flag / segment.
CREATE TABLE flags (
    key         TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    spec        TEXT NOT NULL,
    archived    INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE flag_versions (
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

CREATE TABLE segments (
    key         TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    spec        TEXT NOT NULL,
    archived    INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE segment_versions (
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
    seq        INTEGER PRIMARY KEY,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    canonical  TEXT NOT NULL,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL
);

-- Single-row counters (the configuration revision that ETags hash).
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('revision', 0);

INSERT INTO environments (name, position, created_at) VALUES
    ('dev', 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('staging', 2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ('prod', 3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

-- Versions and the audit log are append-only.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER flag_versions_no_update BEFORE UPDATE ON flag_versions
BEGIN SELECT RAISE(ABORT, 'flag_versions is append-only'); END;
CREATE TRIGGER flag_versions_no_delete BEFORE DELETE ON flag_versions
BEGIN SELECT RAISE(ABORT, 'flag_versions is append-only'); END;
CREATE TRIGGER segment_versions_no_update BEFORE UPDATE ON segment_versions
BEGIN SELECT RAISE(ABORT, 'segment_versions is append-only'); END;
CREATE TRIGGER segment_versions_no_delete BEFORE DELETE ON segment_versions
BEGIN SELECT RAISE(ABORT, 'segment_versions is append-only'); END;
