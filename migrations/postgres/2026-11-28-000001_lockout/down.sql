ALTER TABLE refresh_tokens DROP COLUMN family_started_at;
ALTER TABLE operators DROP COLUMN locked_until;
ALTER TABLE operators DROP COLUMN failure_window_at;
ALTER TABLE operators DROP COLUMN failed_logins;
