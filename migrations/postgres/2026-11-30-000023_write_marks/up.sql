-- Read-your-writes with a read replica (#20, docs/DEPLOYMENT.md "Primary and read replicas"):
-- after a principal's write, the primary's WAL position at that moment, so a read of the same
-- principal on any node goes to the replica only once the replica has replayed that far.
-- UNLOGGED: a mark costs no WAL and is not replicated (only the primary reads it); a crash
-- empties the table, which only sends reads to the replica a little early for the seconds after
-- a restart. One row per principal, overwritten.
CREATE UNLOGGED TABLE write_marks (
    tenant_id  UUID        NOT NULL,
    -- the user or API key that wrote
    principal  UUID        NOT NULL,
    -- pg_current_wal_lsn() after the write committed, as bytes from 0/0
    lsn        BIGINT      NOT NULL,
    written_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, principal)
);
