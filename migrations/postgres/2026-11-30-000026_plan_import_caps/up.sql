-- Per-plan caps on one bulk import (#19): data rows and file bytes; NULL: the server's
-- defaults (100,000 rows, 32 MiB).
ALTER TABLE plans ADD COLUMN max_import_rows BIGINT;
ALTER TABLE plans ADD COLUMN max_import_bytes BIGINT;
