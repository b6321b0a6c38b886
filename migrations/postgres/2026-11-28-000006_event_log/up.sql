-- The event log (#14): every change of a tenant writes one event in the transaction that makes
-- the change. The feed reads in (txid, seq) order and only below the visibility horizon (the
-- oldest transaction still running), so a transaction that commits late cannot slip an event
-- in behind a position a reader already passed (docs/ARCHITECTURE.md, "Event log").
-- pg_current_xact_id() needs PostgreSQL 13 or newer.
ALTER TABLE events RENAME TO events_before_log;

CREATE TABLE events (
    seq                BIGINT GENERATED ALWAYS AS IDENTITY,
    txid               BIGINT      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    tenant_id          UUID        NOT NULL REFERENCES tenants (id),
    id                 UUID        NOT NULL UNIQUE,
    at                 TIMESTAMPTZ NOT NULL,
    event_type         TEXT        NOT NULL,
    actor_kind         TEXT        NOT NULL,
    actor_id           UUID,
    actor_name         TEXT        NOT NULL,
    subject_type       TEXT        NOT NULL,
    subject_id         UUID        NOT NULL,
    ticket_id          UUID,
    -- the template key of a ticket or template event, the library key of a record event
    container          TEXT,
    -- who reads it: 'tickets' (staff; requesters and partners of a ticket they see),
    -- 'library' (readers of the library `container`), 'staff', 'admin'
    audience           TEXT        NOT NULL,
    payload            JSONB       NOT NULL,
    -- what requesters and partners read instead; NULL: not for them
    restricted_payload JSONB,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX events_feed ON events (tenant_id, txid, seq);
CREATE INDEX events_age ON events (at);

-- The notify rows written before the log existed stay, as `ticket.notify` events.
INSERT INTO events (txid, tenant_id, id, at, event_type, actor_kind, actor_id, actor_name,
                    subject_type, subject_id, ticket_id, container, audience, payload,
                    restricted_payload)
SELECT 0, tenant_id, id, at, 'ticket.notify', 'user', NULL, '', 'ticket', ticket_id, ticket_id,
       payload ->> 'template', 'tickets', payload, NULL
FROM events_before_log
WHERE ticket_id IS NOT NULL
ORDER BY id;

DROP TABLE events_before_log;
