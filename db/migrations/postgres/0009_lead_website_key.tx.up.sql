-- 0009 (PostgreSQL): leads are deduplicated by their website too; as
-- db/migrations/0009. website_key is the website's host (db.WebsiteKey);
-- NULL when the website is empty, has no host name, or is on a host shared
-- by many businesses. A new lead is a duplicate when its e-mail, company
-- domain or website key matches an existing lead's (db/lead_dedupe.go):
-- three UNIQUE index probes, never a scan.
--
-- The SQLite migration also derives the key of the leads stored before it
-- (the backfill between its backfill:begin and backfill:end). This set of
-- migrations only ever runs on a new, empty PostgreSQL database (there was
-- no PostgreSQL schema before it), so there is nothing to backfill, and the
-- statement is left out rather than kept untested.
ALTER TABLE leads ADD COLUMN website_key TEXT
    CHECK (website_key IS NULL OR (website_key = lower(website_key) AND length(website_key) > 0));

CREATE UNIQUE INDEX leads_website_key ON leads (website_key) WHERE website_key IS NOT NULL;
