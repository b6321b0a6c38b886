-- Background work shared by every node (docs/ARCHITECTURE.md, "Jobs"; ADR-22). A row is one
-- job; a node claims due rows with FOR UPDATE SKIP LOCKED and holds them under a lease
-- (lease_owner, lease_until) while it runs them. A crashed node's leases expire and another
-- node takes the work. Finished one-off jobs are deleted; a job out of attempts keeps its row
-- with failed_at and last_error. A recurring job exists once, by its singleton key.
CREATE TABLE jobs (
    id           UUID        NOT NULL PRIMARY KEY,
    kind         TEXT        NOT NULL,
    tenant_id    UUID        REFERENCES tenants (id) ON DELETE CASCADE,
    payload      JSONB       NOT NULL,
    singleton    TEXT,
    run_at       TIMESTAMPTZ NOT NULL,
    attempts     INTEGER     NOT NULL,
    max_attempts INTEGER     NOT NULL,
    lease_owner  TEXT,
    lease_until  TIMESTAMPTZ,
    last_error   TEXT,
    failed_at    TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL
);

-- The claim query: pending (failed_at IS NULL) rows by run_at.
CREATE INDEX jobs_due ON jobs (failed_at, run_at);
CREATE UNIQUE INDEX jobs_singleton ON jobs (singleton);
CREATE INDEX jobs_tenant ON jobs (tenant_id);
