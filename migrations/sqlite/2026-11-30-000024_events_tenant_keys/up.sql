-- Keys of the event log that Citus can distribute by tenant (#20; the PostgreSQL migration of
-- the same name explains). SQLite keeps numbering a tenant's events last + 1 under its one
-- writer (txid is 0), so only the keys change: the primary key becomes the feed's order
-- (tenant_id, txid, seq), replacing the feed index, and event ids are unique per tenant. A
-- column constraint cannot be dropped in SQLite, so the table is rebuilt.
CREATE TABLE events_rekeyed (
    -- assigned by the writer (the tenant's last + 1) under the one-writer lock
    seq                BIGINT      NOT NULL,
    txid               BIGINT      NOT NULL DEFAULT 0,
    tenant_id          TEXT        NOT NULL REFERENCES tenants (id),
    id                 TEXT        NOT NULL,
    at                 TEXT NOT NULL,
    event_type         TEXT        NOT NULL,
    actor_kind         TEXT        NOT NULL,
    actor_id           TEXT,
    actor_name         TEXT        NOT NULL,
    subject_type       TEXT        NOT NULL,
    subject_id         TEXT        NOT NULL,
    ticket_id          TEXT,
    -- the template key of a ticket or template event, the library key of a record event
    container          TEXT,
    -- who reads it: 'tickets' (staff; requesters and partners of a ticket they see),
    -- 'library' (readers of the library `container`), 'staff', 'admin'
    audience           TEXT        NOT NULL,
    payload            TEXT       NOT NULL,
    -- what requesters and partners read instead; NULL: not for them
    restricted_payload TEXT,
    PRIMARY KEY (tenant_id, txid, seq)
);
INSERT INTO events_rekeyed (seq, txid, tenant_id, id, at, event_type, actor_kind, actor_id,
                            actor_name, subject_type, subject_id, ticket_id, container,
                            audience, payload, restricted_payload)
SELECT seq, txid, tenant_id, id, at, event_type, actor_kind, actor_id, actor_name,
       subject_type, subject_id, ticket_id, container, audience, payload, restricted_payload
FROM events;
DROP TABLE events;
ALTER TABLE events_rekeyed RENAME TO events;
CREATE UNIQUE INDEX events_by_id ON events (tenant_id, id);
CREATE INDEX events_age ON events (at);
