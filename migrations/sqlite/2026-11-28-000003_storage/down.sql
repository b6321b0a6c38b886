DROP INDEX ticket_attachments_sha256_idx;
DROP TABLE tenant_storage;
ALTER TABLE plans DROP COLUMN max_stored_bytes;
