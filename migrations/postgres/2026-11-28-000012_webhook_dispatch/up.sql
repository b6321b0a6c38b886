-- Webhook deliveries go out per subscription: one job per subscription reads the event log
-- after the subscription's cursor and sends what it matches, in batches (ADR-25). Delivery
-- rows are written when a delivery is attempted (or held back), not with the event.
ALTER TABLE webhooks ADD COLUMN cursor_txid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN cursor_seq BIGINT NOT NULL DEFAULT 0;
-- Existing subscriptions start after the events written so far (their deliveries are rows
-- already).
UPDATE webhooks SET
    cursor_txid = COALESCE((SELECT e.txid FROM events e WHERE e.tenant_id = webhooks.tenant_id
                            ORDER BY e.txid DESC, e.seq DESC LIMIT 1), 0),
    cursor_seq = COALESCE((SELECT e.seq FROM events e WHERE e.tenant_id = webhooks.tenant_id
                           ORDER BY e.txid DESC, e.seq DESC LIMIT 1), 0);
-- The per-delivery jobs of before are dropped; `webhook.sweep` gives their subscriptions a
-- job of the new kind.
DELETE FROM jobs WHERE kind = 'webhook.deliver' AND singleton IS NULL;
-- A subscription's pending deliveries in event order: the job's reads (due ones, and those
-- waiting for a retry that later ones of their subject wait behind) and the sweep's. Only
-- pending rows are in it, so it stays small however long the delivery log grows. It
-- replaces the per-subject index of the per-delivery jobs.
DROP INDEX webhook_deliveries_subject;
CREATE INDEX webhook_deliveries_pending
    ON webhook_deliveries (tenant_id, webhook_id, event_txid, event_seq)
    WHERE status = 'pending';
