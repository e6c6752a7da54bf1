-- Issuing tokens for other principals is user administration: a capability of its own, held by
-- the bootstrap admin token and the tokens it (or another holder) grants it to. The bootstrap
-- token of an existing database (made by "system") keeps the power it always had.
ALTER TABLE tokens ADD COLUMN user_admin BIGINT NOT NULL DEFAULT 0;
UPDATE tokens SET user_admin = 1 WHERE kind = 'admin' AND created_by = 'system';
-- An evaluation-only server-sdk token reads and evaluates flags but cannot post events or
-- Unleash metrics, which feed rollouts' guardrails (issue 16, item 13).
ALTER TABLE tokens ADD COLUMN evaluate_only BIGINT NOT NULL DEFAULT 0;
