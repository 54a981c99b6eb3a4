-- 0009: leads are deduplicated by their website too.
--
-- Until now a lead's only company key was domain_key: the registrable domain
-- of its e-mail, or of its website when the e-mail was at a free-mail
-- provider or missing. A lead with a business e-mail was never compared by
-- its website, so jane@acme.io with the website acme.com was stored beside
-- an earlier lead at acme.com. website_key is the website's host
-- (db.WebsiteKey: lower-case, without scheme, user, port, path, query,
-- fragment, trailing dot or leading "www." unless no dot would be left;
-- NULL when the website is empty,
-- no host name, or on a host shared by many businesses such as facebook.com).
-- A new lead is a duplicate when its e-mail, company domain or website key
-- matches an existing lead's e-mail, domain_key or website_key (db/
-- lead_dedupe.go): three UNIQUE index probes, never a scan.
ALTER TABLE leads ADD COLUMN website_key TEXT
    CHECK (website_key IS NULL OR (website_key = lower(website_key) AND length(website_key) > 0));

-- The leads stored so far get their key with the same steps as
-- db.WebsiteKey (lead_dedupe_test.go runs this statement and compares).
-- Where several old leads share a website, the oldest keeps the key and the
-- others stay NULL: they were stored before this rule and are left as they
-- are (the UNIQUE index below would refuse them otherwise). One pass over
-- leads, once.
-- backfill:begin
WITH
s0 (id, s) AS (SELECT id, lower(trim(website, ' ')) FROM leads WHERE website <> ''),
s1 (id, s) AS (SELECT id, CASE WHEN instr(s, '://') > 0 THEN substr(s, instr(s, '://') + 3) ELSE s END FROM s0),
s2 (id, s) AS (SELECT id, replace(replace(s, '?', '/'), '#', '/') || '/' FROM s1),
s3 (id, s) AS (SELECT id, substr(s, 1, instr(s, '/') - 1) FROM s2),
s4 (id, s) AS (SELECT id, substr(s, instr(s, '@') + 1) FROM s3),
s5 (id, s) AS (SELECT id, rtrim(CASE WHEN instr(s, ':') > 0 THEN substr(s, 1, instr(s, ':') - 1) ELSE s END, '.') FROM s4),
s6 (id, s) AS (SELECT id, CASE WHEN substr(s, 1, 4) = 'www.' AND instr(substr(s, 5), '.') > 0 THEN substr(s, 5) ELSE s END FROM s5),
shared (host) AS (VALUES
    ('facebook.com'), ('fb.com'), ('instagram.com'), ('linkedin.com'), ('twitter.com'),
    ('x.com'), ('youtube.com'), ('tiktok.com'), ('pinterest.com'), ('linktr.ee'),
    ('google.com'), ('goo.gl'), ('g.page'), ('yelp.com'), ('tripadvisor.com'), ('medium.com'),
    ('github.com'), ('gitlab.com'), ('wordpress.com'), ('wix.com'), ('squarespace.com'),
    ('weebly.com'), ('etsy.com'), ('amazon.com'), ('ebay.com'), ('t.me'), ('wa.me'), ('bit.ly'),
    ('about.me'), ('notion.so')),
keyed (id, k) AS (
    SELECT id, s FROM s6
    WHERE instr(s, '.') > 0 AND substr(s, 1, 1) <> '.' AND s NOT GLOB '*[^a-z0-9.-]*'
      AND NOT EXISTS (SELECT 1 FROM shared WHERE s = host OR substr(s, -length(host) - 1) = '.' || host)),
oldest (id, k) AS (SELECT MIN(id), k FROM keyed GROUP BY k)
UPDATE leads SET website_key = oldest.k FROM oldest WHERE leads.id = oldest.id;
-- backfill:end

CREATE UNIQUE INDEX leads_website_key ON leads (website_key) WHERE website_key IS NOT NULL;
