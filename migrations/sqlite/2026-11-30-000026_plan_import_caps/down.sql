ALTER TABLE plans DROP COLUMN max_import_bytes;
ALTER TABLE plans DROP COLUMN max_import_rows;
