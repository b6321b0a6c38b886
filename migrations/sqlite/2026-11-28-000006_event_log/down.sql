CREATE TABLE events_before_log (
    tenant_id TEXT        NOT NULL REFERENCES tenants (id),
    id        TEXT        NOT NULL,
    at        TEXT NOT NULL,
    kind      TEXT        NOT NULL,
    ticket_id TEXT,
    payload   TEXT       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
INSERT INTO events_before_log (tenant_id, id, at, kind, ticket_id, payload)
SELECT tenant_id, id, at, event_type, ticket_id, payload FROM events WHERE event_type = 'ticket.notify';
DROP TABLE events;
ALTER TABLE events_before_log RENAME TO events;
