-- 0024 (PostgreSQL): the activity page (/admin/activity) counts what
-- happened in its window; as db/migrations/0024. With these indexes each
-- count is a range search of the window. messages_outcome_at is an
-- expression index: a query must spell COALESCE(sent_at, updated_at)
-- exactly for PostgreSQL to use it, as for SQLite.
CREATE INDEX leads_contacted_at ON leads (contacted_at) WHERE contacted_at IS NOT NULL;
CREATE INDEX leads_responded_at ON leads (responded_at) WHERE responded_at IS NOT NULL;
CREATE INDEX leads_converted_at ON leads (converted_at) WHERE converted_at IS NOT NULL;
CREATE INDEX invoices_issued_at ON invoices (issued_at) WHERE issued_at IS NOT NULL;
CREATE INDEX messages_outcome_at ON messages (COALESCE(sent_at, updated_at));
