-- Aggregates and sketches are kept per contributing token (`source`, the token's id; '' for
-- rows from before this migration and for counts no token reported), so that an admin can
-- leave one token's contributions out of a rollout's verdicts. Readers sum over sources.
CREATE TABLE aggregates_by_source (
    rollout   TEXT NOT NULL,
    wave      INTEGER NOT NULL,
    arm       TEXT NOT NULL,
    metric    TEXT NOT NULL,
    n         REAL NOT NULL,
    sum       REAL NOT NULL,
    sumsq     REAL NOT NULL,
    last_at   TEXT NOT NULL,
    source    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (rollout, wave, arm, metric, source)
);
INSERT INTO aggregates_by_source (rollout, wave, arm, metric, n, sum, sumsq, last_at, source)
    SELECT rollout, wave, arm, metric, n, sum, sumsq, last_at, '' FROM aggregates;
DROP TABLE aggregates;
ALTER TABLE aggregates_by_source RENAME TO aggregates;

CREATE TABLE sketches_by_source (
    rollout  TEXT NOT NULL,
    wave     INTEGER NOT NULL,
    arm      TEXT NOT NULL,
    metric   TEXT NOT NULL,
    counts   TEXT NOT NULL,
    source   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (rollout, wave, arm, metric, source)
);
INSERT INTO sketches_by_source (rollout, wave, arm, metric, counts, source)
    SELECT rollout, wave, arm, metric, counts, '' FROM sketches;
DROP TABLE sketches;
ALTER TABLE sketches_by_source RENAME TO sketches;
