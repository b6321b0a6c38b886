DROP INDEX ticket_history_template_at_idx;
CREATE INDEX ticket_history_at_idx ON ticket_history (tenant_id, at);
ALTER TABLE ticket_history DROP COLUMN template_id;
