-- Webhook deliveries go out per subscription: one job per subscription drains its pending
-- deliveries in event order (ADR-25). The per-delivery jobs of before are dropped; the
-- `webhook.sweep` job gives their subscriptions a job of the new kind.
DELETE FROM jobs WHERE kind = 'webhook.deliver' AND singleton IS NULL;
-- A subscription's pending deliveries in event order: the job's reads (due ones, and those
-- waiting for a retry that later ones of their subject wait behind) and the sweep's. Only
-- pending rows are in it, so it stays small however long the delivery log grows. It
-- replaces the per-subject index of the per-delivery jobs.
DROP INDEX webhook_deliveries_subject;
CREATE INDEX webhook_deliveries_pending
    ON webhook_deliveries (tenant_id, webhook_id, event_txid, event_seq)
    WHERE status = 'pending';
