-- 0009 (PostgreSQL): leads are deduplicated by their website too; as
-- db/migrations/0009. website_key is the website's host (db.WebsiteKey:
-- lower-case, without scheme, user, port, path, query, fragment, trailing
-- dot or leading "www." unless no dot would be left; NULL when the website
-- is empty, has no host name, or is on a host shared by many businesses such
-- as facebook.com). A new lead is a duplicate when its e-mail, company
-- domain or website key matches an existing lead's (db/lead_dedupe.go):
-- three UNIQUE index probes, never a scan.
ALTER TABLE leads ADD COLUMN website_key TEXT
    CHECK (website_key IS NULL OR (website_key = lower(website_key) AND length(website_key) > 0));

-- The leads stored so far get their key with the same steps as
-- db.WebsiteKey (lead_dedupe_test.go runs this statement and compares);
-- where several share a website, the oldest keeps the key. The steps are
-- SQLite's, in PostgreSQL's functions: instr is strpos, trim(x, ' ') is
-- btrim, GLOB '*[^a-z0-9.-]*' is ~ '[^a-z0-9.-]', and SQLite's
-- substr(s, -n) (the last n characters) is right(s, n).
-- backfill:begin
WITH
s0 (id, s) AS (SELECT id, lower(btrim(website, ' ')) FROM leads WHERE website <> ''),
s1 (id, s) AS (SELECT id, CASE WHEN strpos(s, '://') > 0 THEN substr(s, strpos(s, '://') + 3) ELSE s END FROM s0),
s2 (id, s) AS (SELECT id, replace(replace(s, '?', '/'), '#', '/') || '/' FROM s1),
s3 (id, s) AS (SELECT id, substr(s, 1, strpos(s, '/') - 1) FROM s2),
s4 (id, s) AS (SELECT id, substr(s, strpos(s, '@') + 1) FROM s3),
s5 (id, s) AS (SELECT id, rtrim(CASE WHEN strpos(s, ':') > 0 THEN substr(s, 1, strpos(s, ':') - 1) ELSE s END, '.') FROM s4),
s6 (id, s) AS (SELECT id, CASE WHEN substr(s, 1, 4) = 'www.' AND strpos(substr(s, 5), '.') > 0 THEN substr(s, 5) ELSE s END FROM s5),
shared (host) AS (VALUES
    ('facebook.com'), ('fb.com'), ('instagram.com'), ('linkedin.com'), ('twitter.com'),
    ('x.com'), ('youtube.com'), ('tiktok.com'), ('pinterest.com'), ('linktr.ee'),
    ('google.com'), ('goo.gl'), ('g.page'), ('yelp.com'), ('tripadvisor.com'), ('medium.com'),
    ('github.com'), ('gitlab.com'), ('wordpress.com'), ('wix.com'), ('squarespace.com'),
    ('weebly.com'), ('etsy.com'), ('amazon.com'), ('ebay.com'), ('t.me'), ('wa.me'), ('bit.ly'),
    ('about.me'), ('notion.so')),
keyed (id, k) AS (
    SELECT id, s FROM s6
    WHERE strpos(s, '.') > 0 AND substr(s, 1, 1) <> '.' AND s !~ '[^a-z0-9.-]'
      AND NOT EXISTS (SELECT 1 FROM shared WHERE s = host OR right(s, length(host) + 1) = '.' || host)),
oldest (id, k) AS (SELECT MIN(id), k FROM keyed GROUP BY k)
UPDATE leads SET website_key = oldest.k FROM oldest WHERE leads.id = oldest.id;
-- backfill:end

CREATE UNIQUE INDEX leads_website_key ON leads (website_key) WHERE website_key IS NOT NULL;
