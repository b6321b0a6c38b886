-- The deleted plaintext secret is not restored: an older version generates a new one.
ALTER TABLE api_keys DROP COLUMN expires_at;
DROP TABLE signing_keys;
