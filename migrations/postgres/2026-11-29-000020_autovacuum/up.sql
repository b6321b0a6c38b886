-- Statistics and lists count through index-only scans, which skip the table only for pages
-- the visibility map marks all-visible; a change clears the mark until VACUUM runs. By
-- default autovacuum waits for 20 % of a table to change (200,000 tickets at 1,000,000), so
-- after a mass change (a template migration of 100,000 tickets) every such scan read the
-- table for a long while (docs/PERFORMANCE.md, "Process insight"). 2 % keeps the marks fresh.
ALTER TABLE tickets SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE ticket_history SET (autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
