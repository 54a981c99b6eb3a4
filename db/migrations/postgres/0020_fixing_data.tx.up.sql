-- 0020 (PostgreSQL): fixing data from the control room (issue 13); as
-- db/migrations/0020.
--
-- customers.contact_name: the name of the customer's contact, as an
-- operator corrects it; '' means the name of the lead it came from.
ALTER TABLE customers ADD COLUMN contact_name TEXT NOT NULL DEFAULT '';

-- The suppression list page: newest first, a page read from this index in
-- order (keyset on created_at, id); a search is a prefix of the value, a
-- range of suppressions_value. The range is in byte order: value is
-- COLLATE "C" (0001), so this index is too.
CREATE INDEX suppressions_created ON suppressions (created_at, id);
CREATE INDEX suppressions_value ON suppressions (value);
