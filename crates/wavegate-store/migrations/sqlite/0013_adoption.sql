-- Adoption: one row per rollout and user served its new variant (the adoption report's
-- input). Days are days since 1970-01-01 UTC; the latest exposure and key task win.
CREATE TABLE adoption_users (
    rollout     TEXT NOT NULL,
    user_key    TEXT NOT NULL,
    cohort      TEXT NOT NULL,
    exposed_day BIGINT NOT NULL,
    task_day    BIGINT,
    PRIMARY KEY (rollout, user_key)
);
CREATE INDEX adoption_users_exposed ON adoption_users (rollout, exposed_day);
