-- Lock-out for the platform operator (the same rule as for tenant users) and an absolute
-- lifetime for refresh-token families: every token of a family carries when its login began.

ALTER TABLE operators ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE operators ADD COLUMN failure_window_at TEXT;
ALTER TABLE operators ADD COLUMN locked_until TEXT;

-- Existing families began with their oldest token. The default (the epoch) is the safe side:
-- a row that somehow missed the update counts as an expired family.
ALTER TABLE refresh_tokens
    ADD COLUMN family_started_at TEXT NOT NULL DEFAULT '1970-01-01T00:00:00.000000Z';
UPDATE refresh_tokens SET family_started_at = (
    SELECT MIN(f.created_at) FROM refresh_tokens AS f
    WHERE f.tenant_id = refresh_tokens.tenant_id AND f.family_id = refresh_tokens.family_id
);
