-- A token may expire (a person's token for their own scripts): after `expires_at` it is refused
-- like a revoked one. NULL: it never expires.
ALTER TABLE tokens ADD COLUMN expires_at TEXT;
