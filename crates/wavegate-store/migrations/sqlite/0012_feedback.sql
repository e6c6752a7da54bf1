-- Pilot feedback: one row per piece of feedback about a release.
CREATE TABLE feedback (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    release    TEXT NOT NULL,
    category   TEXT NOT NULL,
    cohort     TEXT NOT NULL,
    sentiment  TEXT NOT NULL,
    body       TEXT NOT NULL,
    at         TEXT NOT NULL,
    principal  TEXT NOT NULL
);
CREATE INDEX feedback_release ON feedback (release, at);
