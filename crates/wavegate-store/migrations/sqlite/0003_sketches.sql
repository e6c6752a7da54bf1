-- Mergeable latency sketches per rollout × wave × arm × metric: bucket index → count, as JSON.
CREATE TABLE sketches (
    rollout  TEXT NOT NULL,
    wave     INTEGER NOT NULL,
    arm      TEXT NOT NULL,
    metric   TEXT NOT NULL,
    counts   TEXT NOT NULL,
    PRIMARY KEY (rollout, wave, arm, metric)
);
