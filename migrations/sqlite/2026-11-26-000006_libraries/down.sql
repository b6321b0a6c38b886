DROP TABLE library_tokens;
DROP TABLE library_field_values;
DROP TABLE library_record_versions;
DROP TABLE library_records;
DROP TABLE libraries;
