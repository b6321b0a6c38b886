-- The IMAP poller of a mail channel (#15, docs/mail.md "IMAP setup"). `imap` is its
-- configuration without the password (JSON: host, port, security, username, folder,
-- after_intake, idle; NULL = no polling); the password is sealed under the master key
-- (XChaCha20-Poly1305, bound to the channel id). The poll state is written by the
-- `mail.imap` job only: the mailbox's UIDVALIDITY, the highest UID taken in, the last error
-- (never the password) and when it last polled.
ALTER TABLE mail_channels ADD COLUMN imap TEXT;
ALTER TABLE mail_channels ADD COLUMN imap_password TEXT;
ALTER TABLE mail_channels ADD COLUMN imap_uidvalidity BIGINT;
ALTER TABLE mail_channels ADD COLUMN imap_last_uid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mail_channels ADD COLUMN imap_last_error TEXT;
ALTER TABLE mail_channels ADD COLUMN imap_polled_at TEXT;
