-- 0021: the cycle log's filters, and the last payment-link error of each
-- invoice.
--
-- /admin/runs filters the cycle log by agent and by outcome together; each
-- page walks this index in (started_at, id) order from its cursor, so a
-- rare outcome of one agent (its interrupted runs) reads only its own rows.
-- (agent_runs_agent serves the agent alone, agent_runs_outcome_started the
-- outcome alone.)
CREATE INDEX agent_runs_agent_outcome ON agent_runs (agent, outcome, started_at, id);

-- invoice_link_errors is the last failure to create an invoice's payment
-- link: the provider's error type, code and message as it answered, never
-- the request (no key, no customer address). One row per invoice,
-- replaced at each failure, deleted when the invoice gets its link. The
-- Stripe panel shows the newest (invoice_link_errors_at); the invoice page
-- its own (primary key).
CREATE TABLE invoice_link_errors (
    invoice_id INTEGER PRIMARY KEY REFERENCES invoices (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL DEFAULT '',
    code       TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL CHECK (length(message) BETWEEN 1 AND 500),
    failures   INTEGER NOT NULL DEFAULT 1 CHECK (failures >= 1),
    at         TIMESTAMP NOT NULL
);
CREATE INDEX invoice_link_errors_at ON invoice_link_errors (at, invoice_id);
