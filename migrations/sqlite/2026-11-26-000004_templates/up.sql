-- SQLite representation: uuid, timestamps and JSON as TEXT (see src/db/types.rs).
-- Templates (process definitions) and their versions. A version is a draft until published;
-- a published version is immutable, and tickets stay pinned to the version they started on.
-- The definition is stored whole as JSON; what queries need (key, names, status, numbers) is
-- in columns.

CREATE TABLE templates (
    tenant_id         TEXT        NOT NULL REFERENCES tenants (id),
    id                TEXT        NOT NULL,
    key               TEXT        NOT NULL,
    name_ja           TEXT        NOT NULL,
    name_en           TEXT        NOT NULL,
    latest_version    INTEGER     NOT NULL,
    published_version INTEGER,
    archived          BOOLEAN     NOT NULL DEFAULT FALSE,
    catalog_key       TEXT,
    version           BIGINT      NOT NULL DEFAULT 1,
    created_at        TEXT        NOT NULL,
    updated_at        TEXT        NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX templates_key_key ON templates (tenant_id, key);

CREATE TABLE template_versions (
    tenant_id    TEXT        NOT NULL,
    template_id  TEXT        NOT NULL,
    number       INTEGER     NOT NULL,
    status       TEXT        NOT NULL,
    definition   TEXT        NOT NULL,
    created_by   TEXT        NOT NULL,
    published_by TEXT,
    published_at TEXT       ,
    version      BIGINT      NOT NULL DEFAULT 1,
    created_at   TEXT        NOT NULL,
    updated_at   TEXT        NOT NULL,
    PRIMARY KEY (tenant_id, template_id, number),
    FOREIGN KEY (tenant_id, template_id) REFERENCES templates (tenant_id, id) ON DELETE CASCADE
);
