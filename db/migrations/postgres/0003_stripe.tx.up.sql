-- 0003 (PostgreSQL): what the Stripe webhook and reconcile need to tie
-- Stripe objects back to invoices, as db/migrations/0003. stripe_events is
-- the payment ledger: the event that paid an invoice names the Checkout
-- Session and the PaymentIntent.

-- A refund arrives as a charge, which names its PaymentIntent but carries
-- none of the link's metadata: the PaymentIntent of the paying event is how
-- a refund finds its invoice. Stripe does not promise delivery in order
-- either: a refund that arrives before the payment it undoes is kept here,
-- by PaymentIntent, and applied when the payment lands.
ALTER TABLE stripe_events ADD COLUMN session_id TEXT NOT NULL DEFAULT '';
ALTER TABLE stripe_events ADD COLUMN payment_intent_id TEXT NOT NULL DEFAULT '';
CREATE INDEX stripe_events_payment_intent ON stripe_events (payment_intent_id) WHERE payment_intent_id <> '';

-- A session without metadata finds its invoice by payment link.
CREATE INDEX invoices_payment_link ON invoices (stripe_payment_link_id) WHERE stripe_payment_link_id <> '';
