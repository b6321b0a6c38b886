-- Bulk imports (#19, docs/import-export.md): one row per real (not dry-run) import, with its
-- options, its decoded source while it runs (cleared when it ends), its progress, and one
-- `import_rows` row per data row with the outcome.
CREATE TABLE imports (
    tenant_id     UUID   NOT NULL REFERENCES tenants (id),
    id            UUID   NOT NULL,
    -- tickets, library_records, users or master_items
    target        TEXT   NOT NULL,
    -- the template, library or master key (null for users)
    target_key    TEXT,
    mode          TEXT   NOT NULL,
    -- the options as given (mapping, key column, defaults, …)
    spec          JSONB  NOT NULL,
    format        TEXT   NOT NULL,
    encoding      TEXT   NOT NULL,
    -- queued, running, done or failed
    status        TEXT   NOT NULL,
    source        TEXT   NOT NULL,
    total_rows    BIGINT NOT NULL,
    next_row      BIGINT NOT NULL,
    created_count   BIGINT NOT NULL,
    updated_count   BIGINT NOT NULL,
    unchanged_count BIGINT NOT NULL,
    failed_count    BIGINT NOT NULL,
    error         TEXT,
    created_by    UUID   NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE import_rows (
    tenant_id   UUID   NOT NULL,
    import_id   UUID   NOT NULL,
    row_number  BIGINT NOT NULL,
    line        BIGINT NOT NULL,
    -- created, updated, unchanged or failed
    outcome     TEXT   NOT NULL,
    subject_id  TEXT,
    subject_key TEXT,
    errors      JSONB  NOT NULL,
    PRIMARY KEY (tenant_id, import_id, row_number),
    FOREIGN KEY (tenant_id, import_id) REFERENCES imports (tenant_id, id) ON DELETE CASCADE
);
-- The `created` entry of an imported ticket names its import and source row.
ALTER TABLE ticket_history ADD COLUMN imported JSONB;
