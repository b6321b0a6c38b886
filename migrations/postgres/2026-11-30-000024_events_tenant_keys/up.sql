-- Keys of the event log that Citus can distribute by tenant (#20, docs/DEPLOYMENT.md "Citus";
-- the check in tests/api/citus.rs): no key without tenant_id and no sequence shared by all
-- tenants. The feed orders by (txid, seq) and a transaction's events need only be numbered
-- among themselves, so seq becomes the event's number within its transaction (counted by the
-- writer as it writes them: only that transaction writes rows with its txid), and
-- the primary key becomes the feed's own order, (tenant_id, txid, seq), which also replaces
-- the feed index. Event ids stay unique per tenant. Existing rows keep their numbers, unique
-- per tenant already.
-- The primary key's name depends on the table's history (events was re-created beside its
-- predecessor), so it is looked up.
DO $$
DECLARE
    pk TEXT;
BEGIN
    SELECT conname INTO pk FROM pg_constraint
    WHERE conrelid = 'events'::regclass AND contype = 'p';
    EXECUTE format('ALTER TABLE events DROP CONSTRAINT %I', pk);
END
$$;
ALTER TABLE events DROP CONSTRAINT events_id_key;
ALTER TABLE events ALTER COLUMN seq DROP IDENTITY;
DROP INDEX events_feed;
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (tenant_id, txid, seq);
CREATE UNIQUE INDEX events_by_id ON events (tenant_id, id);
