-- 0012 (PostgreSQL): /paid finds the payment a payer comes back from by its
-- Checkout Session id, in the ledger's session_id (0003); as
-- db/migrations/0012.
CREATE INDEX stripe_events_session ON stripe_events (session_id) WHERE session_id <> '';
