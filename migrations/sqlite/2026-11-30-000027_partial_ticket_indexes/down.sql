DROP INDEX tickets_assignee_idx;
DROP INDEX tickets_group_idx;
DROP INDEX tickets_organization_idx;
CREATE INDEX tickets_assignee_idx ON tickets (tenant_id, assignee_id, id);
CREATE INDEX tickets_group_idx ON tickets (tenant_id, group_id, id);
CREATE INDEX tickets_organization_idx ON tickets (tenant_id, organization_id, id);
