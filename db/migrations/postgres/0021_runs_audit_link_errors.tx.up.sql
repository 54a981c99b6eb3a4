-- 0021 (PostgreSQL): the cycle log's filters, and the last payment-link
-- error of each invoice; as db/migrations/0021.
--
-- /admin/runs filters the cycle log by agent and by outcome together; each
-- page walks this index in (started_at, id) order from its cursor.
CREATE INDEX agent_runs_agent_outcome ON agent_runs (agent, outcome, started_at, id);

-- invoice_link_errors is the last failure to create an invoice's payment
-- link: the provider's error as it answered, never the request. One row per
-- invoice, replaced at each failure, deleted when the invoice gets its
-- link. invoice_id is a plain BIGINT key (no identity): it is the invoice's.
CREATE TABLE invoice_link_errors (
    invoice_id BIGINT PRIMARY KEY REFERENCES invoices (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL DEFAULT '',
    code       TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL CHECK (length(message) BETWEEN 1 AND 500),
    failures   BIGINT NOT NULL DEFAULT 1 CHECK (failures >= 1),
    at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX invoice_link_errors_at ON invoice_link_errors (at, invoice_id);
