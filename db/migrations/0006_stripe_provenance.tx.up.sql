-- 0006: what the Stripe ledger keeps to prove an event belongs to this
-- install, and why it set aside one that does not.
--
-- Stripe signs every event of an account, and several installs can share an
-- account, so a valid signature says nothing about which invoice an event is
-- for. A Checkout Session applies only through the invoice's own payment
-- link, or when its metadata names this install and the invoice; a refund
-- applies only to the invoice whose paying event recorded the PaymentIntent
-- the charge names (0003's payment_intent_id on the paying row; a Checkout
-- Session names no charge). Everything else is recorded with an outcome that
-- says why it was set aside (db/payments.go), and shown in the Stripe health
-- panel.
--
-- charge_id: the refunded charge of a charge.refunded event.
-- detail: the reason an event was set aside (another install's id, the link
-- it was paid through, the error that made it unprocessable), for the
-- operator; '' for an applied event.
ALTER TABLE stripe_events ADD COLUMN charge_id TEXT NOT NULL DEFAULT '';
ALTER TABLE stripe_events ADD COLUMN detail TEXT NOT NULL DEFAULT '';

-- The Stripe panel's set-aside events, newest first, and their counts over a
-- recent window: only the set-aside rows are in the index. The list of
-- outcomes is db.setAsideOutcomes; the queries spell the same condition, so
-- the planner can use the index (db/queryplan_test.go fails if they drift).
CREATE INDEX stripe_events_set_aside ON stripe_events (received_at, outcome)
    WHERE outcome IN ('foreign_install','no_install_metadata','install_unverified','link_mismatch',
                      'unknown_invoice','unknown_payment','unprocessable');
