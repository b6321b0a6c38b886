-- Read-your-writes with a read replica (#20): a PostgreSQL feature (a replica is PostgreSQL
-- only); the table exists here so both backends keep one schema, and stays empty.
CREATE TABLE write_marks (
    tenant_id  TEXT   NOT NULL,
    principal  TEXT   NOT NULL,
    lsn        BIGINT NOT NULL,
    written_at TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, principal)
);
