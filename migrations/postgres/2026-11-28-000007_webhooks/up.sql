-- Webhook subscriptions and their deliveries (#14). A delivery row is written with its event
-- (the outbox) and a `webhook.deliver` job; the job sends it, signed (Standard Webhooks), and
-- records each attempt here. docs/integration.md, "Webhooks".
CREATE TABLE webhooks (
    tenant_id             UUID        NOT NULL REFERENCES tenants (id),
    id                    UUID        NOT NULL,
    url                   TEXT        NOT NULL,
    description           TEXT        NOT NULL,
    -- JSON array of event types; empty: every type
    event_types           JSONB       NOT NULL,
    -- only events of this template (ticket and template events); NULL: any
    template              TEXT,
    enabled               BOOLEAN     NOT NULL,
    -- signing secrets, sealed under the master key; the previous one signs too until
    -- previous_secret_until (rotation overlap)
    secret                TEXT        NOT NULL,
    previous_secret       TEXT,
    previous_secret_until TIMESTAMPTZ,
    -- the first failure since the last success; disabled after STAGEFLOW_WEBHOOK_DISABLE_AFTER_DAYS
    failing_since         TIMESTAMPTZ,
    disabled_reason       TEXT,
    created_by            UUID        NOT NULL,
    version               BIGINT      NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE webhook_deliveries (
    tenant_id        UUID        NOT NULL REFERENCES tenants (id),
    id               UUID        NOT NULL,
    webhook_id       UUID        NOT NULL,
    -- the event delivered (its id is the webhook-id header); a ping has an id of its own
    event_id         UUID        NOT NULL,
    event_type       TEXT        NOT NULL,
    subject_id       UUID,
    -- the event's feed position: deliveries of one subject go out in this order
    event_txid       BIGINT      NOT NULL,
    event_seq        BIGINT      NOT NULL,
    body             TEXT        NOT NULL,
    -- pending, delivered, failed
    status           TEXT        NOT NULL,
    attempts         INTEGER     NOT NULL,
    last_status      INTEGER,
    last_latency_ms  INTEGER,
    last_error       TEXT,
    response_excerpt TEXT,
    next_attempt_at  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    last_attempt_at  TIMESTAMPTZ,
    delivered_at     TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (tenant_id, webhook_id, id);
CREATE INDEX webhook_deliveries_subject ON webhook_deliveries (tenant_id, webhook_id, subject_id, status);
