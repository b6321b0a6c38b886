DROP INDEX webhook_deliveries_pending;
CREATE INDEX webhook_deliveries_subject ON webhook_deliveries (tenant_id, webhook_id, subject_id, status);
