-- 0012: /paid finds the payment a payer comes back from by its Checkout
-- Session id (Stripe's redirect carries it), in the ledger's session_id
-- (0003), which had no index: one short range instead of a scan of every
-- Stripe event.
CREATE INDEX stripe_events_session ON stripe_events (session_id) WHERE session_id <> '';
