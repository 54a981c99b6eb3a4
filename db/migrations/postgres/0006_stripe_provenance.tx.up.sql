-- 0006 (PostgreSQL): what the Stripe ledger keeps to prove an event belongs
-- to this install, and why it set aside one that does not; as
-- db/migrations/0006, whose comment explains the rules.
--
-- charge_id: the refunded charge of a charge.refunded event.
-- detail: the reason an event was set aside, for the operator; '' for an
-- applied event.
ALTER TABLE stripe_events ADD COLUMN charge_id TEXT NOT NULL DEFAULT '';
ALTER TABLE stripe_events ADD COLUMN detail TEXT NOT NULL DEFAULT '';

-- The Stripe panel's set-aside events, newest first, and their counts over a
-- recent window. The list of outcomes is db.setAsideOutcomes; the queries
-- spell the same condition, so the planner can use the index.
CREATE INDEX stripe_events_set_aside ON stripe_events (received_at, outcome)
    WHERE outcome IN ('foreign_install','no_install_metadata','install_unverified','link_mismatch',
                      'unknown_invoice','unknown_payment','unprocessable');
