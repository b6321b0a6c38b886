-- SQLite representation: uuid and timestamps as TEXT (see src/db/types.rs).
-- Masters: a tenant's code lists (categories, priorities, impact…) with ordered, bilingual,
-- optionally hierarchical items. Items are keyed by their code within the master; a
-- deactivated item stays, so values that use it stay valid.

CREATE TABLE masters (
    tenant_id   TEXT        NOT NULL REFERENCES tenants (id),
    id          TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    name_ja     TEXT        NOT NULL,
    name_en     TEXT        NOT NULL,
    description TEXT        NOT NULL DEFAULT '',
    version     BIGINT      NOT NULL DEFAULT 1,
    created_at  TEXT        NOT NULL,
    updated_at  TEXT        NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX masters_key_key ON masters (tenant_id, key);

CREATE TABLE master_items (
    tenant_id   TEXT        NOT NULL,
    master_id   TEXT        NOT NULL,
    code        TEXT        NOT NULL,
    label_ja    TEXT        NOT NULL,
    label_en    TEXT        NOT NULL,
    sort_order  INTEGER     NOT NULL,
    active      BOOLEAN     NOT NULL DEFAULT TRUE,
    parent_code TEXT,
    version     BIGINT      NOT NULL DEFAULT 1,
    created_at  TEXT        NOT NULL,
    updated_at  TEXT        NOT NULL,
    PRIMARY KEY (tenant_id, master_id, code),
    FOREIGN KEY (tenant_id, master_id) REFERENCES masters (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX master_items_order_idx ON master_items (tenant_id, master_id, sort_order, code);
