ALTER TABLE mail_channels DROP COLUMN imap_polled_at;
ALTER TABLE mail_channels DROP COLUMN imap_last_error;
ALTER TABLE mail_channels DROP COLUMN imap_last_uid;
ALTER TABLE mail_channels DROP COLUMN imap_uidvalidity;
ALTER TABLE mail_channels DROP COLUMN imap_password;
ALTER TABLE mail_channels DROP COLUMN imap;
