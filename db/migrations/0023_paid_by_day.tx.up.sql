-- 0023: the dashboard draws the money collected per day over the last 60
-- days (RevenueByDay). No index ordered paid invoices by when they were
-- paid, so that was a read of every paid invoice; this covering partial
-- index makes it one short range of the days asked for (status is a column
-- too, or SQLite would read each row to test it).
CREATE INDEX invoices_paid_at ON invoices (paid_at, currency, amount_cents, status) WHERE status = 'paid';
