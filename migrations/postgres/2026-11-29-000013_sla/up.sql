-- SLA (#16): business calendars, policies per template, and each ticket's clocks as last
-- replayed from its history (what the breach job and the `?sla=` filter read). docs/sla.md.
CREATE TABLE calendars (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    id           UUID NOT NULL,
    name         TEXT NOT NULL,
    -- IANA name, e.g. Asia/Tokyo
    time_zone    TEXT NOT NULL,
    -- JSON: working_hours, japanese_holidays, closures, exceptions
    rules        JSONB NOT NULL,
    version      BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX calendars_name ON calendars (tenant_id, name);

CREATE TABLE sla_policies (
    tenant_id        UUID NOT NULL REFERENCES tenants (id),
    id               UUID NOT NULL,
    -- the template key
    template         TEXT NOT NULL,
    name             TEXT NOT NULL,
    -- the first enabled policy (lowest rank, then id) whose condition holds applies
    rank             INTEGER NOT NULL,
    -- JSON {"field": key, "in": [values]} or NULL (every ticket)
    condition        JSONB,
    -- NULL: around the clock (UTC, every day)
    calendar_id      UUID,
    first_response_minutes INTEGER,
    resolution_minutes     INTEGER,
    at_risk_percent  INTEGER NOT NULL,
    enabled          BOOLEAN NOT NULL,
    version          BIGINT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, calendar_id) REFERENCES calendars (tenant_id, id)
);
-- What every ticket write looks up.
CREATE INDEX sla_policies_by_template ON sla_policies (tenant_id, template, rank);

CREATE TABLE sla_clocks (
    tenant_id        UUID NOT NULL REFERENCES tenants (id),
    ticket_id        UUID NOT NULL,
    -- first_response or resolution
    target           TEXT NOT NULL,
    policy_id        UUID NOT NULL,
    calendar_id      UUID,
    target_seconds   BIGINT NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    -- business time counted up to as_of, in milliseconds
    elapsed_ms       BIGINT NOT NULL,
    as_of            TIMESTAMPTZ NOT NULL,
    running          BOOLEAN NOT NULL,
    stopped_at       TIMESTAMPTZ,
    -- past, or projected while running
    at_risk_at       TIMESTAMPTZ,
    breach_at        TIMESTAMPTZ,
    -- the job emitted the event (once; reset when a replay moves the instant to the future)
    at_risk_notified BOOLEAN NOT NULL,
    breach_notified  BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id, target),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
-- The breach job's two scans: instants not yet announced.
CREATE INDEX sla_clocks_breach_due ON sla_clocks (breach_at) WHERE NOT breach_notified AND breach_at IS NOT NULL;
CREATE INDEX sla_clocks_at_risk_due ON sla_clocks (at_risk_at) WHERE NOT at_risk_notified AND at_risk_at IS NOT NULL;
