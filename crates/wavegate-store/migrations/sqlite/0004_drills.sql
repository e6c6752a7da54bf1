-- Drill evidence: a drill run against a stored plan version.
CREATE TABLE drills (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    plan          TEXT NOT NULL,
    plan_version  INTEGER NOT NULL,
    scenario      TEXT NOT NULL,
    passed        INTEGER NOT NULL,
    report        TEXT NOT NULL,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL
);
CREATE INDEX drills_plan ON drills (plan, plan_version);
