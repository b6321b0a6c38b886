DROP INDEX idempotency_keys_age;
DROP INDEX audit_log_age;
