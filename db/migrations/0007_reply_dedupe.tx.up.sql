-- 0007: a reply delivered twice is stored once. SendGrid's Inbound Parse
-- retries a delivery it thinks failed, and a mail server may hand the same
-- message over twice; each delivery used to become a reply row.
--
-- dedupe_key names the message a row was stored from: "mid:" and the
-- SHA-256 of its Message-ID header, or, for a message without one, "sum:"
-- and the SHA-256 of its sender, subject and text (db.replyDedupeKey). The
-- store inserts with ON CONFLICT DO NOTHING against the unique index below
-- (never INSERT OR REPLACE), so a repeat changes nothing, not even the
-- lead's updated_at.
--
-- Rows stored before this migration (and the simulator's replies) have no
-- key: NULL, which the partial index leaves out, so duplicates an old
-- database already holds cannot make the migration fail, and stay as they
-- are (their Message-ID was never stored, so no key can be made for them).
-- replies has no kept totals and no trigger; nothing else changes.
ALTER TABLE replies ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX replies_dedupe ON replies (lead_id, dedupe_key) WHERE dedupe_key IS NOT NULL;
