-- 0020: fixing data from the control room (issue 13).
--
-- customers.contact_name: the name of the customer's contact, as an
-- operator corrects it; '' means the name of the lead it came from (the
-- only name there was before), which ClaimTasks still falls back to.
ALTER TABLE customers ADD COLUMN contact_name TEXT NOT NULL DEFAULT '';

-- The suppression list page: newest first, a page read from this index in
-- order (keyset on created_at, id); a search is a prefix of the value, a
-- range of suppressions_value.
CREATE INDEX suppressions_created ON suppressions (created_at, id);
CREATE INDEX suppressions_value ON suppressions (value);
