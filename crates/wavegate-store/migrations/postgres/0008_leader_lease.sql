-- Controller leadership is a lease with a deadline (milliseconds since 1970 in the database's
-- clock), renewed by the leader; another replica takes over once it lapses.
ALTER TABLE leader ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
