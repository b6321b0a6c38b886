-- Platform-level tables: they belong to the platform operator, not to a tenant, and are the
-- only tables without tenant_id (the allowlist in tests/api/schema.rs names them).
-- SQLite representation: uuid and timestamps as TEXT (see src/db/types.rs), booleans as INTEGER.

CREATE TABLE platform_settings (
    key        TEXT NOT NULL PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE operators (
    id            TEXT    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    version       BIGINT  NOT NULL DEFAULT 1,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);

CREATE UNIQUE INDEX operators_username_key ON operators (username);
