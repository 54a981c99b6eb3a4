-- 0007 (PostgreSQL): a reply delivered twice is stored once; as
-- db/migrations/0007. dedupe_key names the message a row was stored from
-- (db.replyDedupeKey); the store inserts with ON CONFLICT DO NOTHING against
-- the unique index below. Rows without a key (the simulator's replies) are
-- NULL, which the partial index leaves out.
ALTER TABLE replies ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX replies_dedupe ON replies (lead_id, dedupe_key) WHERE dedupe_key IS NOT NULL;
