-- Attachment storage accounting: an optional plan cap on stored bytes (NULL = unlimited) and
-- each tenant's stored bytes, kept in the transaction that records an attachment.

ALTER TABLE plans ADD COLUMN max_stored_bytes BIGINT;

-- The sum of the sizes of a tenant's attachment rows (the tenant's view: content shared
-- between tickets counts once per attachment).
CREATE TABLE tenant_storage (
    tenant_id    UUID   NOT NULL PRIMARY KEY REFERENCES tenants (id),
    stored_bytes BIGINT NOT NULL DEFAULT 0
);

INSERT INTO tenant_storage (tenant_id, stored_bytes)
SELECT tenant_id, SUM(size) FROM ticket_attachments GROUP BY tenant_id;

-- The blob collector asks which of a batch of hashes any row still references.
CREATE INDEX ticket_attachments_sha256_idx ON ticket_attachments (sha256);
