-- Libraries: record collections a tenant defines with the template field machinery
-- (knowledge base, CMDB, FAQ…), their records with every version, and the same field index
-- and search tokens as tickets (see docs/ARCHITECTURE.md, "Libraries").

CREATE TABLE libraries (
    tenant_id  UUID        NOT NULL REFERENCES tenants (id),
    id         UUID        NOT NULL,
    key        TEXT        NOT NULL,
    definition JSONB       NOT NULL,
    version    BIGINT      NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX libraries_key_key ON libraries (tenant_id, key);

-- `review_due_at` is `reviewed_at` plus the library's review interval (null: never due), kept
-- on the row so that the stale list is an index range. A deleted record keeps its row and
-- its versions; `deleted_at` hides it from lists and references.
CREATE TABLE library_records (
    tenant_id        UUID        NOT NULL,
    id               UUID        NOT NULL,
    library_id       UUID        NOT NULL,
    title            TEXT        NOT NULL,
    fields           JSONB       NOT NULL,
    version          BIGINT      NOT NULL,
    reviewed_at      TIMESTAMPTZ NOT NULL,
    review_due_at    TIMESTAMPTZ,
    deleted_at       TIMESTAMPTZ,
    origin_ticket_id UUID,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, library_id) REFERENCES libraries (tenant_id, id)
);
CREATE INDEX library_records_library_idx ON library_records (tenant_id, library_id, id);
CREATE INDEX library_records_updated_idx ON library_records (tenant_id, library_id, updated_at, id);
CREATE INDEX library_records_due_idx ON library_records (tenant_id, library_id, review_due_at, id);
CREATE INDEX library_records_origin_idx ON library_records (tenant_id, origin_ticket_id, library_id);

-- One row per version of a record: its values then, who made it, and whether a user did it
-- directly or a ticket transition did (ticket_id, ticket_key, transition).
CREATE TABLE library_record_versions (
    tenant_id  UUID        NOT NULL,
    record_id  UUID        NOT NULL,
    version    BIGINT      NOT NULL,
    kind       TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    actor_kind TEXT        NOT NULL,
    actor_id   UUID,
    actor_name TEXT        NOT NULL,
    ticket_id  UUID,
    ticket_key TEXT,
    transition TEXT,
    title      TEXT        NOT NULL,
    fields     JSONB       NOT NULL,
    note       TEXT,
    PRIMARY KEY (tenant_id, record_id, version)
);

CREATE TABLE library_field_values (
    tenant_id  UUID    NOT NULL,
    library_id UUID    NOT NULL,
    field      TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    record_id  UUID    NOT NULL,
    internal   BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, library_id, field, value, record_id)
);

-- `source`: 0 title and public fields, 1 internal fields.
CREATE TABLE library_tokens (
    tenant_id  UUID     NOT NULL,
    library_id UUID     NOT NULL,
    token      TEXT     NOT NULL,
    record_id  UUID     NOT NULL,
    source     SMALLINT NOT NULL,
    PRIMARY KEY (tenant_id, library_id, token, record_id, source)
);
