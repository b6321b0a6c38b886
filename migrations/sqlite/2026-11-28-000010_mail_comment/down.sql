ALTER TABLE mail_messages DROP COLUMN comment_id;
