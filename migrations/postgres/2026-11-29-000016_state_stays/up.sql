-- Statistics read ranges, not every ticket (#16 point 3, ADR-29): a ticket's entry into its
-- current state, and on each state change the entry into the state it leaves, are kept where
-- they are written, so the time in a state is a column, not a search through the history.
ALTER TABLE tickets ADD COLUMN state_entered_at TIMESTAMPTZ;
UPDATE tickets SET state_entered_at = COALESCE(
    (SELECT max(h.at) FROM ticket_history h
      WHERE h.tenant_id = tickets.tenant_id AND h.ticket_id = tickets.id
        AND h.kind IN ('created', 'transition', 'migrated')),
    created_at);
ALTER TABLE tickets ALTER COLUMN state_entered_at SET NOT NULL;

-- On a `transition` or `migrated` entry: when the state it leaves was entered.
ALTER TABLE ticket_history ADD COLUMN state_since TIMESTAMPTZ;
UPDATE ticket_history SET state_since = (
    SELECT max(p.at) FROM ticket_history p
     WHERE p.tenant_id = ticket_history.tenant_id AND p.ticket_id = ticket_history.ticket_id
       AND p.kind IN ('created', 'transition', 'migrated')
       AND (p.ticket_version, p.ordinal) < (ticket_history.ticket_version, ticket_history.ordinal))
 WHERE kind IN ('transition', 'migrated');

-- Tickets per state now, and the open ones' ages in order (percentiles by rank).
CREATE INDEX tickets_stats_idx ON tickets (tenant_id, template_id, state, closed, state_entered_at, stage);
-- State changes in a range of days.
CREATE INDEX ticket_history_at_idx ON ticket_history (tenant_id, at);
-- SLA clocks stopped in a range of days.
CREATE INDEX sla_clocks_stopped_idx ON sla_clocks (tenant_id, stopped_at) WHERE stopped_at IS NOT NULL;
