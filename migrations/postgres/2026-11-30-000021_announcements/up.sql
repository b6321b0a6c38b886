-- Maintenance notices from the operator to tenants (#17 point 5, docs/operations.md,
-- "Maintenance announcements"). Platform-wide; the tenants a notice targets are listed in
-- announcement_tenants unless it targets every tenant.
CREATE TABLE announcements (
    id           UUID        NOT NULL PRIMARY KEY,
    title        TEXT        NOT NULL,
    body         TEXT        NOT NULL,
    starts_at    TIMESTAMPTZ NOT NULL,
    ends_at      TIMESTAMPTZ NOT NULL,
    all_tenants  BOOLEAN     NOT NULL,
    mail_admins  BOOLEAN     NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    published_by UUID        NOT NULL,
    -- set when the operator withdraws it (the window is then off)
    withdrawn_at TIMESTAMPTZ,
    version      INTEGER     NOT NULL
);
-- The windows still to come or running: the header cache and tenant lists read by end.
CREATE INDEX announcements_ends ON announcements (ends_at);

CREATE TABLE announcement_tenants (
    tenant_id       UUID NOT NULL REFERENCES tenants (id),
    announcement_id UUID NOT NULL REFERENCES announcements (id),
    PRIMARY KEY (tenant_id, announcement_id)
);
CREATE INDEX announcement_tenants_by_announcement ON announcement_tenants (announcement_id);
