-- Retention (#17 point 2): the purge jobs delete by age across tenants, in batches; each
-- batch finds its cut-off instant through these indexes instead of scanning the table.
CREATE INDEX audit_log_age ON audit_log (at);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
