-- PostgreSQL only (autovacuum settings); nothing to do on SQLite.
SELECT 1;
