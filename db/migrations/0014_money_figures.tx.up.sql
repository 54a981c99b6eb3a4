-- 0014: the cost of collected work, kept like every other total (0004), so
-- the dashboard can show profit on the money actually collected instead of
-- the list price of all done work.
--
-- metric     label  currency           n                              cents
-- paid_cost  ''     invoice currency   lines of paid invoices         SUM(cost of the lines' tasks)
--
-- Per line, not per task: a task is billed at most once (invoice_lines'
-- UNIQUE (task_id)), but like 0004's triggers these do not rely on it. The
-- currency is the invoice's, the currency its revenue is counted in, so
-- profit on collected work is the paid revenue less this, per currency.
-- It moves when an invoice enters or leaves 'paid' (refunded), when a line
-- joins or leaves a paid invoice, and when the cost of a task on a paid
-- invoice changes. Each trigger reads one invoice's lines
-- (invoice_lines_invoice) or one task's line (invoice_lines' task_id index).

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
           WHERE i.status = 'paid' GROUP BY i.currency;

INSERT INTO kept_totals (metric, label, currency, n, cents)
SELECT metric, label, currency, n, cents FROM kept_totals_expected WHERE metric = 'paid_cost';

-- invoices: in when it becomes paid, out when it stops being paid (a
-- refund), both when its currency changes while paid. An invoice is
-- normally paid after its lines exist; the insert and delete triggers cover
-- rows written another way.
CREATE TRIGGER invoices_paid_cost_insert AFTER INSERT ON invoices WHEN NEW.status = 'paid' BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'paid_cost', NEW.currency, COUNT(*), SUM(t.cost_cents)
      FROM invoice_lines AS il JOIN tasks AS t ON t.id = il.task_id WHERE il.invoice_id = NEW.id HAVING COUNT(*) > 0
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER invoices_paid_cost_update AFTER UPDATE OF status, currency ON invoices
WHEN (OLD.status = 'paid' OR NEW.status = 'paid')
 AND (OLD.status IS NOT NEW.status OR OLD.currency IS NOT NEW.currency) BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'paid_cost', OLD.currency, -COUNT(*), -SUM(t.cost_cents)
      FROM invoice_lines AS il JOIN tasks AS t ON t.id = il.task_id
     WHERE OLD.status = 'paid' AND il.invoice_id = OLD.id HAVING COUNT(*) > 0
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'paid_cost', NEW.currency, COUNT(*), SUM(t.cost_cents)
      FROM invoice_lines AS il JOIN tasks AS t ON t.id = il.task_id
     WHERE NEW.status = 'paid' AND il.invoice_id = NEW.id HAVING COUNT(*) > 0
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER invoices_paid_cost_delete AFTER DELETE ON invoices WHEN OLD.status = 'paid' BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'paid_cost', OLD.currency, -COUNT(*), -SUM(t.cost_cents)
      FROM invoice_lines AS il JOIN tasks AS t ON t.id = il.task_id WHERE il.invoice_id = OLD.id HAVING COUNT(*) > 0
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;

-- invoice_lines: a line on a paid invoice counts its task's cost.
CREATE TRIGGER invoice_lines_paid_cost_insert AFTER INSERT ON invoice_lines BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'paid_cost', i.currency, 1, t.cost_cents FROM invoices AS i JOIN tasks AS t ON t.id = NEW.task_id
     WHERE i.id = NEW.invoice_id AND i.status = 'paid'
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER invoice_lines_paid_cost_update AFTER UPDATE OF invoice_id, task_id ON invoice_lines
WHEN OLD.invoice_id IS NOT NEW.invoice_id OR OLD.task_id IS NOT NEW.task_id BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'paid_cost', i.currency, -1, -t.cost_cents FROM invoices AS i JOIN tasks AS t ON t.id = OLD.task_id
     WHERE i.id = OLD.invoice_id AND i.status = 'paid'
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'paid_cost', i.currency, 1, t.cost_cents FROM invoices AS i JOIN tasks AS t ON t.id = NEW.task_id
     WHERE i.id = NEW.invoice_id AND i.status = 'paid'
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER invoice_lines_paid_cost_delete AFTER DELETE ON invoice_lines BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'paid_cost', i.currency, -1, -t.cost_cents FROM invoices AS i JOIN tasks AS t ON t.id = OLD.task_id
     WHERE i.id = OLD.invoice_id AND i.status = 'paid'
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;

-- tasks: a cost that changes while the task is on a paid invoice moves the
-- total by the difference (n stays); a task removed takes its cost out.
CREATE TRIGGER tasks_paid_cost_update AFTER UPDATE OF cost_cents ON tasks
WHEN OLD.cost_cents IS NOT NEW.cost_cents BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'paid_cost', i.currency, 0, SUM(NEW.cost_cents - OLD.cost_cents)
      FROM invoice_lines AS il JOIN invoices AS i ON i.id = il.invoice_id
     WHERE il.task_id = NEW.id AND i.status = 'paid' GROUP BY i.currency
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER tasks_paid_cost_delete AFTER DELETE ON tasks BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'paid_cost', i.currency, -COUNT(*), -SUM(OLD.cost_cents)
      FROM invoice_lines AS il JOIN invoices AS i ON i.id = il.invoice_id
     WHERE il.task_id = OLD.id AND i.status = 'paid' GROUP BY i.currency
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
