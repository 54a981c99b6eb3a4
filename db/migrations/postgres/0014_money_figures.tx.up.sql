-- 0014 (PostgreSQL): the cost of collected work, kept like every other
-- total (0004); as db/migrations/0014.
--
-- metric     label  currency           n                              cents
-- paid_cost  ''     invoice currency   lines of paid invoices         SUM(cost of the lines' tasks)
--
-- Per line, not per task; the currency is the invoice's. It moves when an
-- invoice enters or leaves 'paid', when a line joins or leaves a paid
-- invoice, and when the cost of a task on a paid invoice changes.
--
-- kept_totals_expected is redefined with every row of 0004's and paid_cost
-- (sums cast to BIGINT, days formatted with to_char, as in 0004).
DROP VIEW kept_totals_expected;
CREATE VIEW kept_totals_expected (metric, label, currency, n, cents) AS
          SELECT 'leads', status, '', COUNT(*), 0::bigint FROM leads GROUP BY status
UNION ALL SELECT 'customers', status, '', COUNT(*), 0 FROM customers GROUP BY status
UNION ALL SELECT 'messages', status, '', COUNT(*), 0 FROM messages GROUP BY status
UNION ALL SELECT 'messages_review', '', '', COUNT(*), 0 FROM messages WHERE needs_review HAVING COUNT(*) > 0
UNION ALL SELECT 'suppressions', reason, '', COUNT(*), 0 FROM suppressions GROUP BY reason
UNION ALL SELECT 'tasks', status, currency, COUNT(*), SUM(reward_cents)::bigint FROM tasks GROUP BY status, currency
UNION ALL SELECT 'task_cost', status, currency, COUNT(*), SUM(cost_cents)::bigint FROM tasks GROUP BY status, currency
UNION ALL SELECT 'unbilled', '', t.currency, COUNT(*), SUM(t.reward_cents)::bigint FROM tasks AS t
           WHERE t.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id)
           GROUP BY t.currency
UNION ALL SELECT 'invoices', status, currency, COUNT(*), SUM(amount_cents)::bigint FROM invoices GROUP BY status, currency
UNION ALL SELECT 'open_due', to_char(due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), currency, COUNT(*), SUM(amount_cents)::bigint
           FROM invoices WHERE status = 'open' AND due_at IS NOT NULL
           GROUP BY to_char(due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), currency
UNION ALL SELECT 'agent_runs:' || agent, outcome, '', COUNT(*), 0 FROM agent_runs GROUP BY agent, outcome
UNION ALL SELECT 'audit_log', '', '', COUNT(*), 0 FROM audit_log HAVING COUNT(*) > 0
UNION ALL SELECT 'paid_cost', '', i.currency, COUNT(*), SUM(t.cost_cents)::bigint FROM invoices AS i
           JOIN invoice_lines AS il ON il.invoice_id = i.id JOIN tasks AS t ON t.id = il.task_id
           WHERE i.status = 'paid' GROUP BY i.currency;

INSERT INTO kept_totals (metric, label, currency, n, cents)
SELECT metric, label, currency, n, cents FROM kept_totals_expected WHERE metric = 'paid_cost';

-- invoices: in when it becomes paid, out when it stops being paid (a
-- refund), both when its currency changes while paid. Each reads one
-- invoice's lines (invoice_lines_invoice); HAVING COUNT(*) > 0 adds nothing
-- for an invoice without lines, as in SQLite.
CREATE FUNCTION invoices_paid_cost_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('paid_cost', '', NEW.currency, COUNT(*), SUM(t.cost_cents)::bigint)
       FROM invoice_lines AS il JOIN tasks AS t ON t.id = il.task_id WHERE il.invoice_id = NEW.id HAVING COUNT(*) > 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoices_paid_cost_insert AFTER INSERT ON invoices
FOR EACH ROW WHEN (NEW.status = 'paid') EXECUTE FUNCTION invoices_paid_cost_insert();
CREATE FUNCTION invoices_paid_cost_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'paid' THEN
        PERFORM kept_totals_add('paid_cost', '', OLD.currency, -COUNT(*), -SUM(t.cost_cents)::bigint)
           FROM invoice_lines AS il JOIN tasks AS t ON t.id = il.task_id WHERE il.invoice_id = OLD.id HAVING COUNT(*) > 0;
    END IF;
    IF NEW.status = 'paid' THEN
        PERFORM kept_totals_add('paid_cost', '', NEW.currency, COUNT(*), SUM(t.cost_cents)::bigint)
           FROM invoice_lines AS il JOIN tasks AS t ON t.id = il.task_id WHERE il.invoice_id = NEW.id HAVING COUNT(*) > 0;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoices_paid_cost_update AFTER UPDATE OF status, currency ON invoices
FOR EACH ROW WHEN ((OLD.status = 'paid' OR NEW.status = 'paid')
 AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.currency IS DISTINCT FROM NEW.currency))
EXECUTE FUNCTION invoices_paid_cost_update();
CREATE FUNCTION invoices_paid_cost_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('paid_cost', '', OLD.currency, -COUNT(*), -SUM(t.cost_cents)::bigint)
       FROM invoice_lines AS il JOIN tasks AS t ON t.id = il.task_id WHERE il.invoice_id = OLD.id HAVING COUNT(*) > 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoices_paid_cost_delete AFTER DELETE ON invoices
FOR EACH ROW WHEN (OLD.status = 'paid') EXECUTE FUNCTION invoices_paid_cost_delete();

-- invoice_lines: a line on a paid invoice counts its task's cost.
CREATE FUNCTION invoice_lines_paid_cost_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('paid_cost', '', i.currency, 1, t.cost_cents)
       FROM invoices AS i JOIN tasks AS t ON t.id = NEW.task_id WHERE i.id = NEW.invoice_id AND i.status = 'paid';
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoice_lines_paid_cost_insert AFTER INSERT ON invoice_lines
FOR EACH ROW EXECUTE FUNCTION invoice_lines_paid_cost_insert();
CREATE FUNCTION invoice_lines_paid_cost_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('paid_cost', '', i.currency, -1, -t.cost_cents)
       FROM invoices AS i JOIN tasks AS t ON t.id = OLD.task_id WHERE i.id = OLD.invoice_id AND i.status = 'paid';
    PERFORM kept_totals_add('paid_cost', '', i.currency, 1, t.cost_cents)
       FROM invoices AS i JOIN tasks AS t ON t.id = NEW.task_id WHERE i.id = NEW.invoice_id AND i.status = 'paid';
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoice_lines_paid_cost_update AFTER UPDATE OF invoice_id, task_id ON invoice_lines
FOR EACH ROW WHEN (OLD.invoice_id IS DISTINCT FROM NEW.invoice_id OR OLD.task_id IS DISTINCT FROM NEW.task_id)
EXECUTE FUNCTION invoice_lines_paid_cost_update();
CREATE FUNCTION invoice_lines_paid_cost_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('paid_cost', '', i.currency, -1, -t.cost_cents)
       FROM invoices AS i JOIN tasks AS t ON t.id = OLD.task_id WHERE i.id = OLD.invoice_id AND i.status = 'paid';
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoice_lines_paid_cost_delete AFTER DELETE ON invoice_lines
FOR EACH ROW EXECUTE FUNCTION invoice_lines_paid_cost_delete();

-- tasks: a cost that changes while the task is on a paid invoice moves the
-- total by the difference (n stays); a task removed takes its cost out.
CREATE FUNCTION tasks_paid_cost_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('paid_cost', '', i.currency, 0, SUM(NEW.cost_cents - OLD.cost_cents)::bigint)
       FROM invoice_lines AS il JOIN invoices AS i ON i.id = il.invoice_id
      WHERE il.task_id = NEW.id AND i.status = 'paid' GROUP BY i.currency;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_paid_cost_update AFTER UPDATE OF cost_cents ON tasks
FOR EACH ROW WHEN (OLD.cost_cents IS DISTINCT FROM NEW.cost_cents) EXECUTE FUNCTION tasks_paid_cost_update();
CREATE FUNCTION tasks_paid_cost_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('paid_cost', '', i.currency, -COUNT(*), -SUM(OLD.cost_cents)::bigint)
       FROM invoice_lines AS il JOIN invoices AS i ON i.id = il.invoice_id
      WHERE il.task_id = OLD.id AND i.status = 'paid' GROUP BY i.currency;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_paid_cost_delete AFTER DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_paid_cost_delete();
