-- Lock-out for the platform operator (the same rule as for tenant users) and an absolute
-- lifetime for refresh-token families: every token of a family carries when its login began.

ALTER TABLE operators ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE operators ADD COLUMN failure_window_at TIMESTAMPTZ;
ALTER TABLE operators ADD COLUMN locked_until TIMESTAMPTZ;

-- Existing families began with their oldest token. The default (the epoch) is the safe side:
-- a row that somehow missed the update counts as an expired family.
ALTER TABLE refresh_tokens
    ADD COLUMN family_started_at TIMESTAMPTZ NOT NULL DEFAULT '1970-01-01T00:00:00Z';
UPDATE refresh_tokens AS t SET family_started_at = (
    SELECT MIN(f.created_at) FROM refresh_tokens AS f
    WHERE f.tenant_id = t.tenant_id AND f.family_id = t.family_id
);
