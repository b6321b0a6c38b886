-- The original letter case of usernames is not kept; nothing to undo.
SELECT 1;
