-- Tickets: the cases that run through a template version, with their history, comments,
-- watchers, links, attachments, the event rows that notify actions leave for integrations,
-- and the stored responses of Idempotency-Key requests.
--
-- Custom field values live whole in `tickets.fields` (JSON) for reads, and again as one row
-- per scalar value in `ticket_field_values`, so that a filter on any custom field is an
-- index lookup on both backends rather than a scan of JSON. Keyword search uses our own
-- token index (`ticket_tokens`): lower-cased words and overlapping bigrams of CJK runs,
-- because trigram indexes cannot serve two-character Japanese words (see
-- docs/ARCHITECTURE.md, "Ticket search").

ALTER TABLE templates ADD COLUMN ticket_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE tickets (
    tenant_id        UUID        NOT NULL REFERENCES tenants (id),
    id               UUID        NOT NULL,
    template_id      UUID        NOT NULL,
    template_version INTEGER     NOT NULL,
    key_prefix       TEXT        NOT NULL,
    number           BIGINT      NOT NULL,
    title            TEXT        NOT NULL,
    stage            TEXT        NOT NULL,
    state            TEXT        NOT NULL,
    closed           BOOLEAN     NOT NULL,
    requester_id     UUID,
    assignee_id      UUID,
    group_id         UUID,
    organization_id  UUID,
    fields           JSONB       NOT NULL,
    created_by       UUID        NOT NULL,
    version          BIGINT      NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, template_id) REFERENCES templates (tenant_id, id)
);
-- Numbers are unique per template; 0 marks a ticket whose creating transaction has not
-- taken its number yet (it takes it last, to hold the template's counter briefly).
CREATE UNIQUE INDEX tickets_number_key ON tickets (tenant_id, template_id, number) WHERE number > 0;
CREATE INDEX tickets_state_idx ON tickets (tenant_id, state, id);
CREATE INDEX tickets_template_state_idx ON tickets (tenant_id, template_id, state, id);
CREATE INDEX tickets_assignee_idx ON tickets (tenant_id, assignee_id, id);
CREATE INDEX tickets_group_idx ON tickets (tenant_id, group_id, id);
CREATE INDEX tickets_organization_idx ON tickets (tenant_id, organization_id, id);
CREATE INDEX tickets_requester_idx ON tickets (tenant_id, requester_id, id);
CREATE INDEX tickets_updated_idx ON tickets (tenant_id, updated_at, id);
CREATE INDEX tickets_key_idx ON tickets (tenant_id, key_prefix, number);

-- One row per scalar value of a custom field (a multi-select has one per item). `value` is
-- the normalized text form; values longer than 200 characters are stored as their SHA-256.
-- There is deliberately no index by ticket: a change deletes exactly the rows of the old
-- values (computed from them) by primary key, which keeps every write to one B-tree.
CREATE TABLE ticket_field_values (
    tenant_id UUID    NOT NULL,
    field     TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    ticket_id UUID    NOT NULL,
    internal  BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, field, value, ticket_id)
);

-- Search tokens. `source`: 0 title and public fields, 1 internal fields, 2 public comments,
-- 3 internal comments; requesters and partners match only 0 and 2. Like the field index,
-- rows are deleted by primary key from the old text's tokens.
CREATE TABLE ticket_tokens (
    tenant_id UUID     NOT NULL,
    token     TEXT     NOT NULL,
    ticket_id UUID     NOT NULL,
    source    SMALLINT NOT NULL,
    PRIMARY KEY (tenant_id, token, ticket_id, source)
);

-- Every transition and field change, ordered by the ticket version it produced.
CREATE TABLE ticket_history (
    tenant_id      UUID        NOT NULL,
    ticket_id      UUID        NOT NULL,
    ticket_version BIGINT      NOT NULL,
    ordinal        INTEGER     NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    actor_kind     TEXT        NOT NULL,
    actor_id       UUID,
    actor_name     TEXT        NOT NULL,
    kind           TEXT        NOT NULL,
    transition     TEXT,
    from_state     TEXT,
    to_state       TEXT,
    field          TEXT,
    old_value      JSONB,
    new_value      JSONB,
    internal       BOOLEAN     NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id, ticket_version, ordinal)
);

CREATE TABLE ticket_comments (
    tenant_id   UUID        NOT NULL,
    id          UUID        NOT NULL,
    ticket_id   UUID        NOT NULL,
    author_kind TEXT        NOT NULL,
    author_id   UUID,
    author_name TEXT        NOT NULL,
    body        TEXT        NOT NULL,
    internal    BOOLEAN     NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE INDEX ticket_comments_ticket_idx ON ticket_comments (tenant_id, ticket_id, id);

CREATE TABLE ticket_watchers (
    tenant_id  UUID        NOT NULL,
    ticket_id  UUID        NOT NULL,
    user_id    UUID        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id, user_id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);

-- `parent`: source is the parent of target; `related`; `duplicate_of`: source duplicates
-- target.
CREATE TABLE ticket_links (
    tenant_id  UUID        NOT NULL,
    id         UUID        NOT NULL,
    source_id  UUID        NOT NULL,
    target_id  UUID        NOT NULL,
    kind       TEXT        NOT NULL,
    created_by UUID        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, source_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, target_id) REFERENCES tickets (tenant_id, id)
);
CREATE UNIQUE INDEX ticket_links_pair_key ON ticket_links (tenant_id, source_id, target_id, kind);
CREATE INDEX ticket_links_target_idx ON ticket_links (tenant_id, target_id);

CREATE TABLE ticket_attachments (
    tenant_id     UUID        NOT NULL,
    id            UUID        NOT NULL,
    ticket_id     UUID        NOT NULL,
    file_name     TEXT        NOT NULL,
    content_type  TEXT        NOT NULL,
    size          BIGINT      NOT NULL,
    sha256        TEXT        NOT NULL,
    internal      BOOLEAN     NOT NULL,
    uploaded_by   UUID        NOT NULL,
    uploader_name TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE INDEX ticket_attachments_ticket_idx ON ticket_attachments (tenant_id, ticket_id, id);

-- The tenant's event log: rows written by notify actions (and later by other changes) for
-- webhooks and integrations to pick up.
CREATE TABLE events (
    tenant_id UUID        NOT NULL REFERENCES tenants (id),
    id        UUID        NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    kind      TEXT        NOT NULL,
    ticket_id UUID,
    payload   JSONB       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Responses of creating requests sent with Idempotency-Key, replayed on a repeat.
CREATE TABLE idempotency_keys (
    tenant_id    UUID        NOT NULL,
    principal    TEXT        NOT NULL,
    key          TEXT        NOT NULL,
    request_hash TEXT        NOT NULL,
    status       INTEGER     NOT NULL,
    location     TEXT,
    etag         TEXT,
    body         TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, principal, key)
);
