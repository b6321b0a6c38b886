-- Templates (process definitions) and their versions. A version is a draft until published;
-- a published version is immutable, and tickets stay pinned to the version they started on.
-- The definition is stored whole as JSON; what queries need (key, names, status, numbers) is
-- in columns.

CREATE TABLE templates (
    tenant_id         UUID        NOT NULL REFERENCES tenants (id),
    id                UUID        NOT NULL,
    key               TEXT        NOT NULL,
    name_ja           TEXT        NOT NULL,
    name_en           TEXT        NOT NULL,
    latest_version    INTEGER     NOT NULL,
    published_version INTEGER,
    archived          BOOLEAN     NOT NULL DEFAULT FALSE,
    catalog_key       TEXT,
    version           BIGINT      NOT NULL DEFAULT 1,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX templates_key_key ON templates (tenant_id, key);

CREATE TABLE template_versions (
    tenant_id    UUID        NOT NULL,
    template_id  UUID        NOT NULL,
    number       INTEGER     NOT NULL,
    status       TEXT        NOT NULL,
    definition   JSONB       NOT NULL,
    created_by   UUID        NOT NULL,
    published_by UUID,
    published_at TIMESTAMPTZ,
    version      BIGINT      NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, template_id, number),
    FOREIGN KEY (tenant_id, template_id) REFERENCES templates (tenant_id, id) ON DELETE CASCADE
);
