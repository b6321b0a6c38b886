-- The comment a reply became (`status` = commented), shown as `comment_id` on the message.
ALTER TABLE mail_messages ADD COLUMN comment_id UUID;
