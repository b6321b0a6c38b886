CREATE TABLE events_rekeyed (
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
    container          TEXT,
    audience           TEXT        NOT NULL,
    payload            TEXT       NOT NULL,
    restricted_payload TEXT,
    PRIMARY KEY (tenant_id, seq)
);
INSERT INTO events_rekeyed SELECT seq, txid, tenant_id, id, at, event_type, actor_kind,
       actor_id, actor_name, subject_type, subject_id, ticket_id, container, audience, payload,
       restricted_payload FROM events;
DROP TABLE events;
ALTER TABLE events_rekeyed RENAME TO events;
CREATE INDEX events_feed ON events (tenant_id, txid, seq);
CREATE INDEX events_age ON events (at);
