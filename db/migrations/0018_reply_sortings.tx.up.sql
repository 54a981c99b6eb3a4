-- 0018: the LLM's second opinion on replies the rules were unsure about
-- (agents.RepliesCycle with a reply classifier), and what each cost.
--
-- One row per call to the LLM for a stored reply, written in the reply's own
-- transaction (db.ApplyReply): class is the LLM's answer, '' when it gave
-- none that could be used (an error, a timeout, an invalid class), and
-- reason says what it said or what went wrong. cost_cents is what the call
-- cost, in minor units of currency (the install's default currency, the one
-- tasks are priced in), rounded up to the cent like a task's LLM cost; 0 when
-- no answer came back, so no tokens are known to have been paid for.
--
-- reply_id is NULL only if the reply is deleted later (never done by the
-- app): the money was spent all the same, so the row and its cost stay.
CREATE TABLE reply_sortings (
    id         INTEGER PRIMARY KEY,
    reply_id   INTEGER REFERENCES replies (id) ON DELETE SET NULL,
    model      TEXT NOT NULL DEFAULT '',
    class      TEXT NOT NULL DEFAULT ''
        CHECK (class IN ('','interested','not_now','not_interested','out_of_office','unsubscribe','bounce','other')),
    reason     TEXT NOT NULL DEFAULT '',
    cost_cents INTEGER NOT NULL DEFAULT 0 CHECK (cost_cents >= 0),
    currency   TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX reply_sortings_reply ON reply_sortings (reply_id);

-- The kept total (0004), so the money cards read the cost without a scan:
--
-- metric           label  currency   n                cents
-- reply_sort_cost  ''     currency   LLM sortings     SUM(cost_cents)
--
-- kept_totals_expected is redefined: every row of 0014's definition (which
-- holds 0004's and paid_cost) and reply_sort_cost. A later migration that
-- redefines the view must keep all of them.
DROP VIEW kept_totals_expected;
CREATE VIEW kept_totals_expected (metric, label, currency, n, cents) AS
          SELECT 'leads', status, '', COUNT(*), 0 FROM leads GROUP BY status
UNION ALL SELECT 'customers', status, '', COUNT(*), 0 FROM customers GROUP BY status
UNION ALL SELECT 'messages', status, '', COUNT(*), 0 FROM messages GROUP BY status
UNION ALL SELECT 'messages_review', '', '', COUNT(*), 0 FROM messages WHERE needs_review HAVING COUNT(*) > 0
UNION ALL SELECT 'suppressions', reason, '', COUNT(*), 0 FROM suppressions GROUP BY reason
UNION ALL SELECT 'tasks', status, currency, COUNT(*), SUM(reward_cents) FROM tasks GROUP BY status, currency
UNION ALL SELECT 'task_cost', status, currency, COUNT(*), SUM(cost_cents) FROM tasks GROUP BY status, currency
UNION ALL SELECT 'unbilled', '', t.currency, COUNT(*), SUM(t.reward_cents) FROM tasks AS t
           WHERE t.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id)
           GROUP BY t.currency
UNION ALL SELECT 'invoices', status, currency, COUNT(*), SUM(amount_cents) FROM invoices GROUP BY status, currency
UNION ALL SELECT 'open_due', substr(due_at, 1, 10), currency, COUNT(*), SUM(amount_cents) FROM invoices
           WHERE status = 'open' AND due_at IS NOT NULL GROUP BY substr(due_at, 1, 10), currency
UNION ALL SELECT 'agent_runs:' || agent, outcome, '', COUNT(*), 0 FROM agent_runs GROUP BY agent, outcome
UNION ALL SELECT 'audit_log', '', '', COUNT(*), 0 FROM audit_log HAVING COUNT(*) > 0
UNION ALL SELECT 'paid_cost', '', i.currency, COUNT(*), SUM(t.cost_cents) FROM invoices AS i
           JOIN invoice_lines AS il ON il.invoice_id = i.id JOIN tasks AS t ON t.id = il.task_id
           WHERE i.status = 'paid' GROUP BY i.currency
UNION ALL SELECT 'reply_sort_cost', '', currency, COUNT(*), SUM(cost_cents) FROM reply_sortings GROUP BY currency;

CREATE TRIGGER reply_sortings_kept_insert AFTER INSERT ON reply_sortings BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents) VALUES ('reply_sort_cost', NEW.currency, 1, NEW.cost_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER reply_sortings_kept_update AFTER UPDATE OF currency, cost_cents ON reply_sortings
WHEN OLD.currency IS NOT NEW.currency OR OLD.cost_cents IS NOT NEW.cost_cents BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents) VALUES ('reply_sort_cost', OLD.currency, -1, -OLD.cost_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, currency, n, cents) VALUES ('reply_sort_cost', NEW.currency, 1, NEW.cost_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER reply_sortings_kept_delete AFTER DELETE ON reply_sortings BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents) VALUES ('reply_sort_cost', OLD.currency, -1, -OLD.cost_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
