-- Roles (viewer, editor, releaser, approver, admin), each in some environments, as JSON:
-- `[{"role": "editor", "environments": ["staging"]}]`. NULL: an admin token minted before roles
-- existed, which holds `admin` in its environments (SDK tokens hold no role).
ALTER TABLE tokens ADD COLUMN roles TEXT;
-- A signed-in person's groups at the identity provider, as JSON (`["cab"]`); NULL: none.
ALTER TABLE tokens ADD COLUMN groups TEXT;
