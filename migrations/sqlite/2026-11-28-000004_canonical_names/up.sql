-- Usernames are compared in their canonical form (NFKC, lowercase) from now on; accounts
-- created before are brought to it here. SQL has no NFKC, so this lowercases only (SQLite:
-- ASCII letters; PostgreSQL: every letter); a username that differed from another only by
-- case makes this migration fail on the unique index, which is the wanted outcome: such
-- accounts need a person to rename one before upgrading (docs/ARCHITECTURE.md, ADR-19).
UPDATE operators SET username = lower(username) WHERE username <> lower(username);
UPDATE users SET username = lower(username) WHERE username <> lower(username);
