-- Issuing tokens for other principals is user administration: a capability of its own, held by
-- the bootstrap admin token and the tokens it (or another holder) grants it to. The bootstrap
-- token of an existing database (made by "system") keeps the power it always had.
ALTER TABLE tokens ADD COLUMN user_admin BIGINT NOT NULL DEFAULT 0;
UPDATE tokens SET user_admin = 1 WHERE kind = 'admin' AND created_by = 'system';
