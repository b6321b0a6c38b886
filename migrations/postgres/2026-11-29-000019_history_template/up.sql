-- Statistics read one template's state changes in a range of days (ADR-29): the history
-- carries its ticket's template (a ticket never changes template), so the range is one
-- index scan of that template instead of every template of the tenant.
ALTER TABLE ticket_history ADD COLUMN template_id UUID;
UPDATE ticket_history SET template_id = (
    SELECT t.template_id FROM tickets t
     WHERE t.tenant_id = ticket_history.tenant_id AND t.id = ticket_history.ticket_id);
ALTER TABLE ticket_history ALTER COLUMN template_id SET NOT NULL;
DROP INDEX ticket_history_at_idx;
CREATE INDEX ticket_history_template_at_idx ON ticket_history (tenant_id, template_id, at);
