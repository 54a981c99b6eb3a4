-- 0024: the activity page (/admin/activity) counts what happened in its
-- window: leads created, contacted, responded and converted, invoices
-- issued, and outbox messages by their outcome time (sent_at, or updated_at
-- for those never sent), in total and hour by hour. Each count but the
-- leads created (0001) read its whole table; with these indexes each is a
-- range search of the window.
CREATE INDEX leads_contacted_at ON leads (contacted_at) WHERE contacted_at IS NOT NULL;
CREATE INDEX leads_responded_at ON leads (responded_at) WHERE responded_at IS NOT NULL;
CREATE INDEX leads_converted_at ON leads (converted_at) WHERE converted_at IS NOT NULL;
CREATE INDEX invoices_issued_at ON invoices (issued_at) WHERE issued_at IS NOT NULL;
CREATE INDEX messages_outcome_at ON messages (COALESCE(sent_at, updated_at));
