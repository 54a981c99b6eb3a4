-- 0004 (PostgreSQL): figures the live pages read in O(1) instead of
-- recomputing over whole tables, indexes for their lists, and text search;
-- as db/migrations/0004, whose comment has the table of metrics:
--
-- metric          label         currency   n                cents
-- leads           status        ''         leads            0
-- customers       status        ''         customers        0
-- messages        status        ''         messages         0
-- messages_review ''            ''         needs_review     0
-- suppressions    reason        ''         suppressions     0
-- tasks           status        currency   tasks            SUM(reward)
-- task_cost       status        currency   tasks            SUM(cost)
-- unbilled        ''            currency   done, unbilled   SUM(reward)
-- invoices        status        currency   invoices         SUM(amount)
-- open_due        due date      currency   open invoices    SUM(amount)
-- agent_runs:NAME outcome       ''         runs             0
-- audit_log       ''            ''         entries          0
--
-- Triggers keep kept_totals in the same transaction as every insert, update
-- and delete of the rows it sums; kept_totals_expected computes the same rows
-- from scratch (`check` compares the two, `check --repair-totals` rebuilds).
--
-- Where PostgreSQL differs:
--   - The due date label is to_char(due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'):
--     SQLite stores the time as text and takes its first ten characters; here
--     the time is a TIMESTAMPTZ, so the UTC day is formatted, to the same
--     'YYYY-MM-DD' text the Go code reads on both.
--   - SUM over BIGINT is NUMERIC in PostgreSQL: the view casts each sum back
--     to BIGINT, so n and cents scan into int64 on both.
--   - The upsert every trigger repeats in SQLite is one function here,
--     kept_totals_add. In ON CONFLICT DO UPDATE an unqualified n would be
--     ambiguous (kept_totals' or EXCLUDED's), so the row is named k.
--   - AFTER row triggers run when their statement has finished (SQLite runs
--     each after its own row). The triggers only add and subtract, and each
--     reads rows no other row of the same statement can change (a task's
--     line is UNIQUE by task_id), so the totals come out the same.
CREATE TABLE kept_totals (
    metric   TEXT NOT NULL,
    label    TEXT NOT NULL DEFAULT '',
    currency TEXT NOT NULL DEFAULT '',
    n        BIGINT NOT NULL DEFAULT 0,
    cents    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (metric, label, currency)
);

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
UNION ALL SELECT 'audit_log', '', '', COUNT(*), 0 FROM audit_log HAVING COUNT(*) > 0;

INSERT INTO kept_totals (metric, label, currency, n, cents)
SELECT metric, label, currency, n, cents FROM kept_totals_expected;

-- kept_totals_add adds (n, cents) to one total, creating it at zero first:
-- +1 and +cents for a new row, -1 and -cents for an old one. An update is
-- "old out, new in", guarded by the trigger's WHEN so that updates of other
-- columns (leases, results, timestamps) write nothing here.
CREATE FUNCTION kept_totals_add(p_metric TEXT, p_label TEXT, p_currency TEXT, p_n BIGINT, p_cents BIGINT)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO kept_totals AS k (metric, label, currency, n, cents)
    VALUES (p_metric, p_label, p_currency, p_n, p_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = k.n + EXCLUDED.n, cents = k.cents + EXCLUDED.cents;
$$;

-- A total whose last row is gone is removed, so the table holds only live
-- figures and stays small. The upsert's DO UPDATE fires this UPDATE OF n
-- trigger, as in SQLite; kept_totals has no DELETE trigger, so this DELETE
-- fires nothing further.
CREATE FUNCTION kept_totals_prune() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM kept_totals WHERE metric = NEW.metric AND label = NEW.label AND currency = NEW.currency;
    RETURN NULL;
END;
$$;
CREATE TRIGGER kept_totals_prune AFTER UPDATE OF n ON kept_totals
FOR EACH ROW WHEN (NEW.n = 0) EXECUTE FUNCTION kept_totals_prune();

-- leads
CREATE FUNCTION leads_kept_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('leads', NEW.status, '', 1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER leads_kept_insert AFTER INSERT ON leads FOR EACH ROW EXECUTE FUNCTION leads_kept_insert();
CREATE FUNCTION leads_kept_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('leads', OLD.status, '', -1, 0);
    PERFORM kept_totals_add('leads', NEW.status, '', 1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER leads_kept_update AFTER UPDATE OF status ON leads
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION leads_kept_update();
CREATE FUNCTION leads_kept_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('leads', OLD.status, '', -1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER leads_kept_delete AFTER DELETE ON leads FOR EACH ROW EXECUTE FUNCTION leads_kept_delete();

-- customers
CREATE FUNCTION customers_kept_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('customers', NEW.status, '', 1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER customers_kept_insert AFTER INSERT ON customers FOR EACH ROW EXECUTE FUNCTION customers_kept_insert();
CREATE FUNCTION customers_kept_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('customers', OLD.status, '', -1, 0);
    PERFORM kept_totals_add('customers', NEW.status, '', 1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER customers_kept_update AFTER UPDATE OF status ON customers
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION customers_kept_update();
CREATE FUNCTION customers_kept_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('customers', OLD.status, '', -1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER customers_kept_delete AFTER DELETE ON customers FOR EACH ROW EXECUTE FUNCTION customers_kept_delete();

-- messages: by status, and the ones flagged for review.
CREATE FUNCTION messages_kept_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('messages', NEW.status, '', 1, 0);
    IF NEW.needs_review THEN
        PERFORM kept_totals_add('messages_review', '', '', 1, 0);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER messages_kept_insert AFTER INSERT ON messages FOR EACH ROW EXECUTE FUNCTION messages_kept_insert();
CREATE FUNCTION messages_kept_update_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('messages', OLD.status, '', -1, 0);
    PERFORM kept_totals_add('messages', NEW.status, '', 1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER messages_kept_update_status AFTER UPDATE OF status ON messages
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION messages_kept_update_status();
CREATE FUNCTION messages_kept_update_review() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('messages_review', '', '', CASE WHEN NEW.needs_review THEN 1 ELSE -1 END, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER messages_kept_update_review AFTER UPDATE OF needs_review ON messages
FOR EACH ROW WHEN (OLD.needs_review IS DISTINCT FROM NEW.needs_review) EXECUTE FUNCTION messages_kept_update_review();
CREATE FUNCTION messages_kept_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('messages', OLD.status, '', -1, 0);
    IF OLD.needs_review THEN
        PERFORM kept_totals_add('messages_review', '', '', -1, 0);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER messages_kept_delete AFTER DELETE ON messages FOR EACH ROW EXECUTE FUNCTION messages_kept_delete();

-- suppressions
CREATE FUNCTION suppressions_kept_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('suppressions', NEW.reason, '', 1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER suppressions_kept_insert AFTER INSERT ON suppressions FOR EACH ROW EXECUTE FUNCTION suppressions_kept_insert();
CREATE FUNCTION suppressions_kept_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('suppressions', OLD.reason, '', -1, 0);
    PERFORM kept_totals_add('suppressions', NEW.reason, '', 1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER suppressions_kept_update AFTER UPDATE OF reason ON suppressions
FOR EACH ROW WHEN (OLD.reason IS DISTINCT FROM NEW.reason) EXECUTE FUNCTION suppressions_kept_update();
CREATE FUNCTION suppressions_kept_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('suppressions', OLD.reason, '', -1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER suppressions_kept_delete AFTER DELETE ON suppressions FOR EACH ROW EXECUTE FUNCTION suppressions_kept_delete();

-- tasks: count, reward and cost by status and currency; unbilled done work.
-- "Billed" is one probe of invoice_lines' UNIQUE (task_id) index.
CREATE FUNCTION tasks_kept_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('tasks', NEW.status, NEW.currency, 1, NEW.reward_cents);
    PERFORM kept_totals_add('task_cost', NEW.status, NEW.currency, 1, NEW.cost_cents);
    IF NEW.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = NEW.id) THEN
        PERFORM kept_totals_add('unbilled', '', NEW.currency, 1, NEW.reward_cents);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_kept_insert AFTER INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_kept_insert();
CREATE FUNCTION tasks_kept_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('tasks', OLD.status, OLD.currency, -1, -OLD.reward_cents);
    PERFORM kept_totals_add('tasks', NEW.status, NEW.currency, 1, NEW.reward_cents);
    PERFORM kept_totals_add('task_cost', OLD.status, OLD.currency, -1, -OLD.cost_cents);
    PERFORM kept_totals_add('task_cost', NEW.status, NEW.currency, 1, NEW.cost_cents);
    IF OLD.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = OLD.id) THEN
        PERFORM kept_totals_add('unbilled', '', OLD.currency, -1, -OLD.reward_cents);
    END IF;
    IF NEW.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = NEW.id) THEN
        PERFORM kept_totals_add('unbilled', '', NEW.currency, 1, NEW.reward_cents);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_kept_update AFTER UPDATE OF status, currency, reward_cents, cost_cents ON tasks
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.currency IS DISTINCT FROM NEW.currency
  OR OLD.reward_cents IS DISTINCT FROM NEW.reward_cents OR OLD.cost_cents IS DISTINCT FROM NEW.cost_cents)
EXECUTE FUNCTION tasks_kept_update();
CREATE FUNCTION tasks_kept_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('tasks', OLD.status, OLD.currency, -1, -OLD.reward_cents);
    PERFORM kept_totals_add('task_cost', OLD.status, OLD.currency, -1, -OLD.cost_cents);
    IF OLD.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = OLD.id) THEN
        PERFORM kept_totals_add('unbilled', '', OLD.currency, -1, -OLD.reward_cents);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_kept_delete AFTER DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_kept_delete();

-- invoice_lines: billing a done task takes it out of unbilled work; removing
-- its line (never done by the app) puts it back. Only a task's first line,
-- and its last line removed, move it (each a probe of the task_id index).
CREATE FUNCTION invoice_lines_kept_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('unbilled', '', t.currency, -1, -t.reward_cents)
       FROM tasks AS t WHERE t.id = NEW.task_id AND t.status = 'done'
        AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = NEW.task_id AND id <> NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoice_lines_kept_insert AFTER INSERT ON invoice_lines FOR EACH ROW EXECUTE FUNCTION invoice_lines_kept_insert();
CREATE FUNCTION invoice_lines_kept_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('unbilled', '', t.currency, 1, t.reward_cents)
       FROM tasks AS t WHERE t.id = OLD.task_id AND t.status = 'done'
        AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = OLD.task_id);
    PERFORM kept_totals_add('unbilled', '', t.currency, -1, -t.reward_cents)
       FROM tasks AS t WHERE t.id = NEW.task_id AND t.status = 'done'
        AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = NEW.task_id AND id <> NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoice_lines_kept_update AFTER UPDATE OF task_id ON invoice_lines
FOR EACH ROW WHEN (OLD.task_id IS DISTINCT FROM NEW.task_id) EXECUTE FUNCTION invoice_lines_kept_update();
CREATE FUNCTION invoice_lines_kept_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('unbilled', '', t.currency, 1, t.reward_cents)
       FROM tasks AS t WHERE t.id = OLD.task_id AND t.status = 'done'
        AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = OLD.task_id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoice_lines_kept_delete AFTER DELETE ON invoice_lines FOR EACH ROW EXECUTE FUNCTION invoice_lines_kept_delete();

-- invoices: count and amount by status and currency; open invoices by due
-- date (the UTC day, 'YYYY-MM-DD'), so that overdue money is a sum over
-- days, not over invoices.
CREATE FUNCTION invoices_kept_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('invoices', NEW.status, NEW.currency, 1, NEW.amount_cents);
    IF NEW.status = 'open' AND NEW.due_at IS NOT NULL THEN
        PERFORM kept_totals_add('open_due', to_char(NEW.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), NEW.currency, 1, NEW.amount_cents);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoices_kept_insert AFTER INSERT ON invoices FOR EACH ROW EXECUTE FUNCTION invoices_kept_insert();
CREATE FUNCTION invoices_kept_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('invoices', OLD.status, OLD.currency, -1, -OLD.amount_cents);
    PERFORM kept_totals_add('invoices', NEW.status, NEW.currency, 1, NEW.amount_cents);
    IF OLD.status = 'open' AND OLD.due_at IS NOT NULL THEN
        PERFORM kept_totals_add('open_due', to_char(OLD.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), OLD.currency, -1, -OLD.amount_cents);
    END IF;
    IF NEW.status = 'open' AND NEW.due_at IS NOT NULL THEN
        PERFORM kept_totals_add('open_due', to_char(NEW.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), NEW.currency, 1, NEW.amount_cents);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoices_kept_update AFTER UPDATE OF status, currency, amount_cents, due_at ON invoices
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.currency IS DISTINCT FROM NEW.currency
  OR OLD.amount_cents IS DISTINCT FROM NEW.amount_cents OR OLD.due_at IS DISTINCT FROM NEW.due_at)
EXECUTE FUNCTION invoices_kept_update();
CREATE FUNCTION invoices_kept_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('invoices', OLD.status, OLD.currency, -1, -OLD.amount_cents);
    IF OLD.status = 'open' AND OLD.due_at IS NOT NULL THEN
        PERFORM kept_totals_add('open_due', to_char(OLD.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), OLD.currency, -1, -OLD.amount_cents);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoices_kept_delete AFTER DELETE ON invoices FOR EACH ROW EXECUTE FUNCTION invoices_kept_delete();

-- agent_runs: runs by agent and outcome, for the agent cards.
CREATE FUNCTION agent_runs_kept_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('agent_runs:' || NEW.agent, NEW.outcome, '', 1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER agent_runs_kept_insert AFTER INSERT ON agent_runs FOR EACH ROW EXECUTE FUNCTION agent_runs_kept_insert();
CREATE FUNCTION agent_runs_kept_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('agent_runs:' || OLD.agent, OLD.outcome, '', -1, 0);
    PERFORM kept_totals_add('agent_runs:' || NEW.agent, NEW.outcome, '', 1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER agent_runs_kept_update AFTER UPDATE OF agent, outcome ON agent_runs
FOR EACH ROW WHEN (OLD.agent IS DISTINCT FROM NEW.agent OR OLD.outcome IS DISTINCT FROM NEW.outcome)
EXECUTE FUNCTION agent_runs_kept_update();
CREATE FUNCTION agent_runs_kept_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('agent_runs:' || OLD.agent, OLD.outcome, '', -1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER agent_runs_kept_delete AFTER DELETE ON agent_runs FOR EACH ROW EXECUTE FUNCTION agent_runs_kept_delete();

-- audit_log: entries, for the paged audit list.
CREATE FUNCTION audit_log_kept_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('audit_log', '', '', 1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER audit_log_kept_insert AFTER INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_kept_insert();
CREATE FUNCTION audit_log_kept_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kept_totals_add('audit_log', '', '', -1, 0);
    RETURN NULL;
END;
$$;
CREATE TRIGGER audit_log_kept_delete AFTER DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_kept_delete();

-- Overdue money depends on the clock, so it cannot be kept as one figure:
-- it is the open_due days before today, plus the invoices due earlier today,
-- read from this covering partial index (one day's range).
CREATE INDEX invoices_open_due ON invoices (due_at, currency, amount_cents) WHERE status = 'open';

-- Indexes the newest-first lists walk backwards, so a page reads its rows
-- and stops (keyset pagination: WHERE (created_at, id) < cursor).
CREATE INDEX tasks_created ON tasks (created_at, id);
CREATE INDEX tasks_status_completed ON tasks (status, completed_at, id);
CREATE INDEX invoices_created ON invoices (created_at, id);
CREATE INDEX invoices_customer_created ON invoices (customer_id, created_at, id);
CREATE INDEX tasks_customer_created ON tasks (customer_id, created_at, id);
CREATE INDEX customers_status_created ON customers (status, created_at, id);
CREATE INDEX agent_runs_outcome_started ON agent_runs (outcome, started_at, id);
-- The e-mail panel's newest failures and the Stripe panel's flagged open
-- invoices: each list is bounded by what needs attention.
CREATE INDEX messages_status_updated ON messages (status, updated_at, id);
CREATE INDEX invoices_open_attention ON invoices (updated_at, id) WHERE status = 'open' AND flag <> '';
-- Leads created in the last day, by source (lead source panel).
CREATE INDEX leads_created_source ON leads (created_at, source);

-- Text search. SQLite answers it from FTS5 tables with the trigram tokenizer
-- (leads_fts, customers_fts, tasks_fts, invoices_fts) kept by triggers;
-- PostgreSQL has no FTS5. Here pg_trgm's GIN indexes do the same job: a
-- term of three or more characters, matched as `column ILIKE '%term%'`, is
-- answered from the column's trigram index, case-insensitive like the
-- SQLite search, and the index follows the table with no trigger. pg_trgm
-- is a trusted extension (PostgreSQL 13+): the database owner may create it.
-- The columns, one index each, are the FTS5 tables' columns:
--   leads_fts     (name, email, company, niche, website) -> leads_search_<column>
--   customers_fts (company, contact_email, plan)         -> customers_search_<column>
--   tasks_fts     (kind, description)                    -> tasks_search_<column>
--   invoices_fts  (number, payer_email)                  -> invoices_search_<column>
-- Task results are not indexed here either: they are long generated
-- documents, and the index would outgrow the table.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX leads_search_name ON leads USING gin (name gin_trgm_ops);
CREATE INDEX leads_search_email ON leads USING gin (email gin_trgm_ops);
CREATE INDEX leads_search_company ON leads USING gin (company gin_trgm_ops);
CREATE INDEX leads_search_niche ON leads USING gin (niche gin_trgm_ops);
CREATE INDEX leads_search_website ON leads USING gin (website gin_trgm_ops);
CREATE INDEX customers_search_company ON customers USING gin (company gin_trgm_ops);
CREATE INDEX customers_search_contact_email ON customers USING gin (contact_email gin_trgm_ops);
CREATE INDEX customers_search_plan ON customers USING gin (plan gin_trgm_ops);
CREATE INDEX tasks_search_kind ON tasks USING gin (kind gin_trgm_ops);
CREATE INDEX tasks_search_description ON tasks USING gin (description gin_trgm_ops);
CREATE INDEX invoices_search_number ON invoices USING gin (number gin_trgm_ops);
CREATE INDEX invoices_search_payer_email ON invoices USING gin (payer_email gin_trgm_ops);
