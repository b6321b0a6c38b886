ALTER TABLE ticket_history DROP COLUMN imported;
DROP TABLE import_rows;
DROP TABLE imports;
