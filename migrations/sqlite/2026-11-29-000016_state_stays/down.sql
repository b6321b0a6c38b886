DROP INDEX sla_clocks_stopped_idx;
DROP INDEX ticket_history_at_idx;
DROP INDEX tickets_stats_idx;
ALTER TABLE ticket_history DROP COLUMN state_since;
ALTER TABLE tickets DROP COLUMN state_entered_at;
