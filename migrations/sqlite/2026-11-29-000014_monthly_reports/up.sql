-- The monthly report of each tenant (#16 point 4), stored once its month has ended and never
-- changed: a later read returns the same document. docs/reports.md.
CREATE TABLE monthly_reports (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    -- YYYY-MM, in the tenant's time zone
    month        TEXT NOT NULL,
    document     TEXT NOT NULL,
    generated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, month)
);
