DROP TABLE sla_clocks;
DROP TABLE sla_policies;
DROP TABLE calendars;
