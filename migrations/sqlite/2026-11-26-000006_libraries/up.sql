-- SQLite representation: uuid, timestamps and JSON as TEXT (see src/db/types.rs).
-- Libraries: record collections a tenant defines with the template field machinery
-- (knowledge base, CMDB, FAQ…), their records with every version, and the same field index
-- and search tokens as tickets (see docs/ARCHITECTURE.md, "Libraries").

CREATE TABLE libraries (
    tenant_id  TEXT        NOT NULL REFERENCES tenants (id),
    id         TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    definition TEXT        NOT NULL,
    version    BIGINT      NOT NULL DEFAULT 1,
    created_at TEXT        NOT NULL,
    updated_at TEXT        NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX libraries_key_key ON libraries (tenant_id, key);

-- `review_due_at` is `reviewed_at` plus the library's review interval (null: never due), kept
-- on the row so that the stale list is an index range. A deleted record keeps its row and
-- its versions; `deleted_at` hides it from lists and references.
CREATE TABLE library_records (
    tenant_id        TEXT        NOT NULL,
    id               TEXT        NOT NULL,
    library_id       TEXT        NOT NULL,
    title            TEXT        NOT NULL,
    fields           TEXT        NOT NULL,
    version          BIGINT      NOT NULL,
    reviewed_at      TEXT        NOT NULL,
    review_due_at    TEXT       ,
    deleted_at       TEXT       ,
    origin_ticket_id TEXT,
    created_at       TEXT        NOT NULL,
    updated_at       TEXT        NOT NULL,
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
    tenant_id  TEXT        NOT NULL,
    record_id  TEXT        NOT NULL,
    version    BIGINT      NOT NULL,
    kind       TEXT        NOT NULL,
    at         TEXT        NOT NULL,
    actor_kind TEXT        NOT NULL,
    actor_id   TEXT,
    actor_name TEXT        NOT NULL,
    ticket_id  TEXT,
    ticket_key TEXT,
    transition TEXT,
    title      TEXT        NOT NULL,
    fields     TEXT        NOT NULL,
    note       TEXT,
    PRIMARY KEY (tenant_id, record_id, version)
) WITHOUT ROWID;

CREATE TABLE library_field_values (
    tenant_id  TEXT    NOT NULL,
    library_id TEXT    NOT NULL,
    field      TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    record_id  TEXT    NOT NULL,
    internal   BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, library_id, field, value, record_id)
) WITHOUT ROWID;

-- `source`: 0 title and public fields, 1 internal fields.
CREATE TABLE library_tokens (
    tenant_id  TEXT     NOT NULL,
    library_id TEXT     NOT NULL,
    token      TEXT     NOT NULL,
    record_id  TEXT     NOT NULL,
    source     SMALLINT NOT NULL,
    PRIMARY KEY (tenant_id, library_id, token, record_id, source)
) WITHOUT ROWID;
