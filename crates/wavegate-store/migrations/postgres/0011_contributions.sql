-- Aggregates and sketches are kept per contributing token (`source`, the token's id; '' for
-- rows from before this migration and for counts no token reported), so that an admin can
-- leave one token's contributions out of a rollout's verdicts. Readers sum over sources.
ALTER TABLE aggregates ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE aggregates DROP CONSTRAINT aggregates_pkey;
ALTER TABLE aggregates ADD PRIMARY KEY (rollout, wave, arm, metric, source);
ALTER TABLE sketches ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE sketches DROP CONSTRAINT sketches_pkey;
ALTER TABLE sketches ADD PRIMARY KEY (rollout, wave, arm, metric, source);
