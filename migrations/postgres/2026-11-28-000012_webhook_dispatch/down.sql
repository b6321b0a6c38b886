DROP INDEX webhook_deliveries_pending;
CREATE INDEX webhook_deliveries_subject ON webhook_deliveries (tenant_id, webhook_id, subject_id, status);
ALTER TABLE webhooks DROP COLUMN cursor_seq;
ALTER TABLE webhooks DROP COLUMN cursor_txid;
