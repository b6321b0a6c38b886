-- The monthly report of each tenant (#16 point 4), stored once its month has ended and never
-- changed: a later read returns the same document. docs/reports.md.
CREATE TABLE monthly_reports (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    -- YYYY-MM, in the tenant's time zone
    month        TEXT NOT NULL,
    document     JSONB NOT NULL,
    generated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, month)
);
