-- Tenant exports (#17 point 6, docs/operations.md "Tenant export, import and erasure"): the
-- archive of every row and attachment of one tenant, made by a job. A platform table: the
-- record outlives the tenant it names (deleting a tenant requires one), so the tenant is
-- `exported_tenant`, with no foreign key.
CREATE TABLE tenant_exports (
    id              TEXT        NOT NULL PRIMARY KEY,
    exported_tenant TEXT        NOT NULL,
    slug            TEXT        NOT NULL,
    -- pending, done or failed
    status          TEXT        NOT NULL,
    requested_at    TEXT NOT NULL,
    finished_at     TEXT,
    -- the archive's file name under <data dir>/exports
    file_name       TEXT,
    size_bytes      BIGINT,
    sha256          TEXT,
    row_count       BIGINT,
    attachments     BIGINT,
    error           TEXT
);
CREATE INDEX tenant_exports_by_tenant ON tenant_exports (exported_tenant, id);
