-- Plans, accounts (contracts) and tenants belong to the platform. Everything a tenant owns is
-- keyed by (tenant_id, id). Rows with tenant_id = the nil uuid belong to the platform operator
-- (its refresh tokens and audit entries); those two tables therefore have no foreign key to
-- tenants.

CREATE TABLE plans (
    id            UUID        NOT NULL PRIMARY KEY,
    name          TEXT        NOT NULL,
    max_tenants   INTEGER     NOT NULL,
    max_processes INTEGER     NOT NULL,
    max_users     INTEGER     NOT NULL,
    version       BIGINT      NOT NULL DEFAULT 1,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX plans_name_key ON plans (name);

CREATE TABLE accounts (
    id         UUID        NOT NULL PRIMARY KEY,
    name       TEXT        NOT NULL,
    plan_id    UUID        NOT NULL REFERENCES plans (id),
    version    BIGINT      NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX accounts_name_key ON accounts (name);
CREATE INDEX accounts_plan_id_idx ON accounts (plan_id);

CREATE TABLE tenants (
    id         UUID        NOT NULL PRIMARY KEY,
    account_id UUID        NOT NULL REFERENCES accounts (id),
    slug       TEXT        NOT NULL,
    name       TEXT        NOT NULL,
    time_zone  TEXT        NOT NULL,
    active     BOOLEAN     NOT NULL DEFAULT TRUE,
    version    BIGINT      NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX tenants_slug_key ON tenants (slug);
CREATE INDEX tenants_account_id_idx ON tenants (account_id);

CREATE TABLE organizations (
    tenant_id  UUID        NOT NULL REFERENCES tenants (id),
    id         UUID        NOT NULL,
    name       TEXT        NOT NULL,
    kind       TEXT        NOT NULL,
    version    BIGINT      NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX organizations_name_key ON organizations (tenant_id, name);

CREATE TABLE users (
    tenant_id           UUID        NOT NULL REFERENCES tenants (id),
    id                  UUID        NOT NULL,
    username            TEXT        NOT NULL,
    password_hash       TEXT        NOT NULL,
    display_name        TEXT        NOT NULL,
    email               TEXT,
    roles               TEXT        NOT NULL,
    organization_id     UUID,
    active              BOOLEAN     NOT NULL DEFAULT TRUE,
    failed_logins       INTEGER     NOT NULL DEFAULT 0,
    failure_window_at   TIMESTAMPTZ,
    locked_until        TIMESTAMPTZ,
    version             BIGINT      NOT NULL DEFAULT 1,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, organization_id) REFERENCES organizations (tenant_id, id)
);
CREATE UNIQUE INDEX users_username_key ON users (tenant_id, username);
CREATE INDEX users_organization_idx ON users (tenant_id, organization_id);

CREATE TABLE groups (
    tenant_id   UUID        NOT NULL REFERENCES tenants (id),
    id          UUID        NOT NULL,
    name        TEXT        NOT NULL,
    description TEXT        NOT NULL DEFAULT '',
    version     BIGINT      NOT NULL DEFAULT 1,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX groups_name_key ON groups (tenant_id, name);

CREATE TABLE group_members (
    tenant_id  UUID        NOT NULL,
    group_id   UUID        NOT NULL,
    user_id    UUID        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX group_members_user_idx ON group_members (tenant_id, user_id);

CREATE TABLE refresh_tokens (
    tenant_id  UUID        NOT NULL,
    id         UUID        NOT NULL,
    family_id  UUID        NOT NULL,
    subject_id UUID        NOT NULL,
    token_hash TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (tenant_id, token_hash);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_subject_idx ON refresh_tokens (tenant_id, subject_id);

CREATE TABLE api_keys (
    tenant_id    UUID        NOT NULL REFERENCES tenants (id),
    id           UUID        NOT NULL,
    name         TEXT        NOT NULL,
    roles        TEXT        NOT NULL,
    secret_hash  TEXT        NOT NULL,
    created_by   UUID        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE audit_log (
    tenant_id   UUID        NOT NULL,
    id          UUID        NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    actor_kind  TEXT        NOT NULL,
    actor_id    UUID,
    actor_name  TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    target_kind TEXT        NOT NULL,
    target_id   TEXT,
    details     JSONB       NOT NULL,
    client_addr TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_log_at_idx ON audit_log (tenant_id, at);
CREATE INDEX audit_log_action_idx ON audit_log (tenant_id, action, at);
CREATE INDEX audit_log_actor_idx ON audit_log (tenant_id, actor_id, at);

CREATE TABLE usage_counters (
    tenant_id UUID   NOT NULL REFERENCES tenants (id),
    month     TEXT   NOT NULL,
    api_calls BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, month)
);
