-- Most tickets have no assignee, group or organization when they are filed (#18 point 4):
-- their index entries only cost writes and space. Every query on these columns compares
-- them with a value (`= ?`), which implies NOT NULL, so the partial indexes still serve it.
DROP INDEX tickets_assignee_idx;
DROP INDEX tickets_group_idx;
DROP INDEX tickets_organization_idx;
CREATE INDEX tickets_assignee_idx ON tickets (tenant_id, assignee_id, id) WHERE assignee_id IS NOT NULL;
CREATE INDEX tickets_group_idx ON tickets (tenant_id, group_id, id) WHERE group_id IS NOT NULL;
CREATE INDEX tickets_organization_idx ON tickets (tenant_id, organization_id, id) WHERE organization_id IS NOT NULL;
