-- 0023 (PostgreSQL): the dashboard draws the money collected per day over
-- the last 60 days (RevenueByDay); as db/migrations/0023. This covering
-- partial index makes it one short range of the days asked for.
CREATE INDEX invoices_paid_at ON invoices (paid_at, currency, amount_cents, status) WHERE status = 'paid';
