-- The event log (#14): every change of a tenant writes one event in the transaction that makes
-- the change. The feed reads in (txid, seq) order and only below the visibility horizon (the
-- oldest transaction still running), so a transaction that commits late cannot slip an event
-- in behind a position a reader already passed (docs/ARCHITECTURE.md, "Event log").
-- On SQLite one writer at a time (BEGIN IMMEDIATE) makes seq order commit order; txid is 0.
ALTER TABLE events RENAME TO events_before_log;

CREATE TABLE events (
    -- assigned by the writer (the tenant's last + 1) under the one-writer lock
    seq                BIGINT      NOT NULL,
    txid               BIGINT      NOT NULL DEFAULT 0,
    tenant_id          TEXT        NOT NULL REFERENCES tenants (id),
    id                 TEXT        NOT NULL UNIQUE,
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
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX events_feed ON events (tenant_id, txid, seq);
CREATE INDEX events_age ON events (at);

-- The notify rows written before the log existed stay, as `ticket.notify` events.
INSERT INTO events (seq, txid, tenant_id, id, at, event_type, actor_kind, actor_id, actor_name,
                    subject_type, subject_id, ticket_id, container, audience, payload,
                    restricted_payload)
SELECT ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY id), 0, tenant_id, id, at, 'ticket.notify', 'user', NULL, '', 'ticket', ticket_id, ticket_id,
       json_extract(payload, '$.template'), 'tickets', payload, NULL
FROM events_before_log
WHERE ticket_id IS NOT NULL
ORDER BY id;

DROP TABLE events_before_log;
