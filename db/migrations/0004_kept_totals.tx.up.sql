-- 0004: figures the live pages read in O(1) instead of recomputing over
-- whole tables, indexes for their lists, and full-text search.
--
-- kept_totals holds, per (metric, label, currency), how many rows contribute
-- (n) and the money they sum to (cents). Triggers keep it in the same
-- transaction as every insert, update and delete of the rows it sums, so no
-- code path (agent, admin, import, a hand-run UPDATE) can make it drift; the
-- tables write one small row more per change, and every page reads a table
-- of a few dozen rows instead of scanning tasks and invoices.
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
-- Profit is reward - cost (a CHECK on tasks guarantees it row by row).
-- kept_totals_expected computes the same rows from scratch: the migration
-- fills the table from it, `check` compares the two, `check --repair-totals`
-- rebuilds from it.
CREATE TABLE kept_totals (
    metric   TEXT NOT NULL,
    label    TEXT NOT NULL DEFAULT '',
    currency TEXT NOT NULL DEFAULT '',
    n        INTEGER NOT NULL DEFAULT 0,
    cents    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (metric, label, currency)
) WITHOUT ROWID;

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
UNION ALL SELECT 'audit_log', '', '', COUNT(*), 0 FROM audit_log HAVING COUNT(*) > 0;

INSERT INTO kept_totals (metric, label, currency, n, cents)
SELECT metric, label, currency, n, cents FROM kept_totals_expected WHERE true;

-- A total whose last row is gone is removed, so the table holds only live
-- figures and stays small: a due day whose open invoices were all paid, a
-- status no row has any more. (recursive_triggers is off: this DELETE fires
-- nothing further.)
CREATE TRIGGER kept_totals_prune AFTER UPDATE OF n ON kept_totals WHEN NEW.n = 0 BEGIN
    DELETE FROM kept_totals WHERE metric = NEW.metric AND label = NEW.label AND currency = NEW.currency;
END;

-- Every trigger adds (+1, +cents) for a new row and (-1, -cents) for an old
-- one with the same upsert; an update is "old out, new in", guarded by WHEN
-- so that updates of other columns (leases, results, timestamps) write
-- nothing here. Never write these tables with INSERT OR REPLACE (or an ON
-- CONFLICT REPLACE): with recursive_triggers off, the row REPLACE deletes
-- fires no delete trigger and the totals would drift (check shows it,
-- check --repair-totals mends it).

-- leads
CREATE TRIGGER leads_kept_insert AFTER INSERT ON leads BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('leads', NEW.status, 1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER leads_kept_update AFTER UPDATE OF status ON leads
WHEN OLD.status IS NOT NEW.status BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('leads', OLD.status, -1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
    INSERT INTO kept_totals (metric, label, n) VALUES ('leads', NEW.status, 1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER leads_kept_delete AFTER DELETE ON leads BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('leads', OLD.status, -1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;

-- customers
CREATE TRIGGER customers_kept_insert AFTER INSERT ON customers BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('customers', NEW.status, 1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER customers_kept_update AFTER UPDATE OF status ON customers
WHEN OLD.status IS NOT NEW.status BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('customers', OLD.status, -1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
    INSERT INTO kept_totals (metric, label, n) VALUES ('customers', NEW.status, 1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER customers_kept_delete AFTER DELETE ON customers BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('customers', OLD.status, -1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;

-- messages: by status, and the ones flagged for review.
CREATE TRIGGER messages_kept_insert AFTER INSERT ON messages BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('messages', NEW.status, 1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
    INSERT INTO kept_totals (metric, n) SELECT 'messages_review', 1 WHERE NEW.needs_review
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER messages_kept_update_status AFTER UPDATE OF status ON messages
WHEN OLD.status IS NOT NEW.status BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('messages', OLD.status, -1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
    INSERT INTO kept_totals (metric, label, n) VALUES ('messages', NEW.status, 1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER messages_kept_update_review AFTER UPDATE OF needs_review ON messages
WHEN OLD.needs_review IS NOT NEW.needs_review BEGIN
    INSERT INTO kept_totals (metric, n) VALUES ('messages_review', CASE WHEN NEW.needs_review THEN 1 ELSE -1 END)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER messages_kept_delete AFTER DELETE ON messages BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('messages', OLD.status, -1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
    INSERT INTO kept_totals (metric, n) SELECT 'messages_review', -1 WHERE OLD.needs_review
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;

-- suppressions
CREATE TRIGGER suppressions_kept_insert AFTER INSERT ON suppressions BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('suppressions', NEW.reason, 1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER suppressions_kept_update AFTER UPDATE OF reason ON suppressions
WHEN OLD.reason IS NOT NEW.reason BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('suppressions', OLD.reason, -1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
    INSERT INTO kept_totals (metric, label, n) VALUES ('suppressions', NEW.reason, 1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER suppressions_kept_delete AFTER DELETE ON suppressions BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('suppressions', OLD.reason, -1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;

-- tasks: count, reward and cost by status and currency; unbilled done work.
-- "Billed" is one probe of invoice_lines' UNIQUE (task_id) index.
CREATE TRIGGER tasks_kept_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO kept_totals (metric, label, currency, n, cents) VALUES ('tasks', NEW.status, NEW.currency, 1, NEW.reward_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, label, currency, n, cents) VALUES ('task_cost', NEW.status, NEW.currency, 1, NEW.cost_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, currency, n, cents) SELECT 'unbilled', NEW.currency, 1, NEW.reward_cents
     WHERE NEW.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = NEW.id)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER tasks_kept_update AFTER UPDATE OF status, currency, reward_cents, cost_cents ON tasks
WHEN OLD.status IS NOT NEW.status OR OLD.currency IS NOT NEW.currency
  OR OLD.reward_cents IS NOT NEW.reward_cents OR OLD.cost_cents IS NOT NEW.cost_cents BEGIN
    INSERT INTO kept_totals (metric, label, currency, n, cents) VALUES ('tasks', OLD.status, OLD.currency, -1, -OLD.reward_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, label, currency, n, cents) VALUES ('tasks', NEW.status, NEW.currency, 1, NEW.reward_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, label, currency, n, cents) VALUES ('task_cost', OLD.status, OLD.currency, -1, -OLD.cost_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, label, currency, n, cents) VALUES ('task_cost', NEW.status, NEW.currency, 1, NEW.cost_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, currency, n, cents) SELECT 'unbilled', OLD.currency, -1, -OLD.reward_cents
     WHERE OLD.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = OLD.id)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, currency, n, cents) SELECT 'unbilled', NEW.currency, 1, NEW.reward_cents
     WHERE NEW.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = NEW.id)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER tasks_kept_delete AFTER DELETE ON tasks BEGIN
    INSERT INTO kept_totals (metric, label, currency, n, cents) VALUES ('tasks', OLD.status, OLD.currency, -1, -OLD.reward_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, label, currency, n, cents) VALUES ('task_cost', OLD.status, OLD.currency, -1, -OLD.cost_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, currency, n, cents) SELECT 'unbilled', OLD.currency, -1, -OLD.reward_cents
     WHERE OLD.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = OLD.id)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;

-- invoice_lines: billing a done task takes it out of unbilled work; removing
-- its line (never done by the app) puts it back. task_id is UNIQUE, but the
-- triggers do not rely on it: only a task's first line, and its last line
-- removed, move it (each a probe of the task_id index), so the totals stay
-- exact even on a file whose constraint was loosened.
CREATE TRIGGER invoice_lines_kept_insert AFTER INSERT ON invoice_lines BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'unbilled', t.currency, -1, -t.reward_cents FROM tasks AS t WHERE t.id = NEW.task_id AND t.status = 'done'
       AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = NEW.task_id AND id <> NEW.id)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER invoice_lines_kept_update AFTER UPDATE OF task_id ON invoice_lines
WHEN OLD.task_id IS NOT NEW.task_id BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'unbilled', t.currency, 1, t.reward_cents FROM tasks AS t WHERE t.id = OLD.task_id AND t.status = 'done'
       AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = OLD.task_id)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'unbilled', t.currency, -1, -t.reward_cents FROM tasks AS t WHERE t.id = NEW.task_id AND t.status = 'done'
       AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = NEW.task_id AND id <> NEW.id)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER invoice_lines_kept_delete AFTER DELETE ON invoice_lines BEGIN
    INSERT INTO kept_totals (metric, currency, n, cents)
    SELECT 'unbilled', t.currency, 1, t.reward_cents FROM tasks AS t WHERE t.id = OLD.task_id AND t.status = 'done'
       AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = OLD.task_id)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;

-- invoices: count and amount by status and currency; open invoices by due
-- date (the UTC day, the first ten characters of the stored time), so that
-- overdue money is a sum over days, not over invoices.
CREATE TRIGGER invoices_kept_insert AFTER INSERT ON invoices BEGIN
    INSERT INTO kept_totals (metric, label, currency, n, cents) VALUES ('invoices', NEW.status, NEW.currency, 1, NEW.amount_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, label, currency, n, cents)
    SELECT 'open_due', substr(NEW.due_at, 1, 10), NEW.currency, 1, NEW.amount_cents WHERE NEW.status = 'open' AND NEW.due_at IS NOT NULL
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER invoices_kept_update AFTER UPDATE OF status, currency, amount_cents, due_at ON invoices
WHEN OLD.status IS NOT NEW.status OR OLD.currency IS NOT NEW.currency OR OLD.amount_cents IS NOT NEW.amount_cents
  OR OLD.due_at IS NOT NEW.due_at BEGIN
    INSERT INTO kept_totals (metric, label, currency, n, cents) VALUES ('invoices', OLD.status, OLD.currency, -1, -OLD.amount_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, label, currency, n, cents) VALUES ('invoices', NEW.status, NEW.currency, 1, NEW.amount_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, label, currency, n, cents)
    SELECT 'open_due', substr(OLD.due_at, 1, 10), OLD.currency, -1, -OLD.amount_cents WHERE OLD.status = 'open' AND OLD.due_at IS NOT NULL
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, label, currency, n, cents)
    SELECT 'open_due', substr(NEW.due_at, 1, 10), NEW.currency, 1, NEW.amount_cents WHERE NEW.status = 'open' AND NEW.due_at IS NOT NULL
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;
CREATE TRIGGER invoices_kept_delete AFTER DELETE ON invoices BEGIN
    INSERT INTO kept_totals (metric, label, currency, n, cents) VALUES ('invoices', OLD.status, OLD.currency, -1, -OLD.amount_cents)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
    INSERT INTO kept_totals (metric, label, currency, n, cents)
    SELECT 'open_due', substr(OLD.due_at, 1, 10), OLD.currency, -1, -OLD.amount_cents WHERE OLD.status = 'open' AND OLD.due_at IS NOT NULL
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n, cents = cents + excluded.cents;
END;

-- agent_runs: runs by agent and outcome, for the agent cards.
CREATE TRIGGER agent_runs_kept_insert AFTER INSERT ON agent_runs BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('agent_runs:' || NEW.agent, NEW.outcome, 1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER agent_runs_kept_update AFTER UPDATE OF agent, outcome ON agent_runs
WHEN OLD.agent IS NOT NEW.agent OR OLD.outcome IS NOT NEW.outcome BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('agent_runs:' || OLD.agent, OLD.outcome, -1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
    INSERT INTO kept_totals (metric, label, n) VALUES ('agent_runs:' || NEW.agent, NEW.outcome, 1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER agent_runs_kept_delete AFTER DELETE ON agent_runs BEGIN
    INSERT INTO kept_totals (metric, label, n) VALUES ('agent_runs:' || OLD.agent, OLD.outcome, -1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;

-- audit_log: entries, for the paged audit list.
CREATE TRIGGER audit_log_kept_insert AFTER INSERT ON audit_log BEGIN
    INSERT INTO kept_totals (metric, n) VALUES ('audit_log', 1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER audit_log_kept_delete AFTER DELETE ON audit_log BEGIN
    INSERT INTO kept_totals (metric, n) VALUES ('audit_log', -1)
    ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + excluded.n;
END;

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
-- invoices: each list is bounded by what needs attention. (Open invoices
-- without a link are counted over 0005's invoices_need_link.)
CREATE INDEX messages_status_updated ON messages (status, updated_at, id);
CREATE INDEX invoices_open_attention ON invoices (updated_at, id) WHERE status = 'open' AND flag <> '';
-- Leads created in the last day, by source (lead source panel).
CREATE INDEX leads_created_source ON leads (created_at, source);

-- Full-text search with the trigram tokenizer: a term of three or more
-- characters is a substring match answered from the index (case-insensitive,
-- like the LIKE it replaces). External-content tables store only the index;
-- the triggers fire only when a searched column changes, so status updates
-- cost nothing here. Task results are not indexed: they are long generated
-- documents, and the index would outgrow the table.
CREATE VIRTUAL TABLE leads_fts USING fts5(name, email, company, niche, website,
    content = 'leads', content_rowid = 'id', tokenize = 'trigram');
INSERT INTO leads_fts (leads_fts) VALUES ('rebuild');
CREATE TRIGGER leads_fts_insert AFTER INSERT ON leads BEGIN
    INSERT INTO leads_fts (rowid, name, email, company, niche, website)
    VALUES (NEW.id, NEW.name, NEW.email, NEW.company, NEW.niche, NEW.website);
END;
CREATE TRIGGER leads_fts_update AFTER UPDATE OF name, email, company, niche, website ON leads BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, name, email, company, niche, website)
    VALUES ('delete', OLD.id, OLD.name, OLD.email, OLD.company, OLD.niche, OLD.website);
    INSERT INTO leads_fts (rowid, name, email, company, niche, website)
    VALUES (NEW.id, NEW.name, NEW.email, NEW.company, NEW.niche, NEW.website);
END;
CREATE TRIGGER leads_fts_delete AFTER DELETE ON leads BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, name, email, company, niche, website)
    VALUES ('delete', OLD.id, OLD.name, OLD.email, OLD.company, OLD.niche, OLD.website);
END;

CREATE VIRTUAL TABLE customers_fts USING fts5(company, contact_email, plan,
    content = 'customers', content_rowid = 'id', tokenize = 'trigram');
INSERT INTO customers_fts (customers_fts) VALUES ('rebuild');
CREATE TRIGGER customers_fts_insert AFTER INSERT ON customers BEGIN
    INSERT INTO customers_fts (rowid, company, contact_email, plan) VALUES (NEW.id, NEW.company, NEW.contact_email, NEW.plan);
END;
CREATE TRIGGER customers_fts_update AFTER UPDATE OF company, contact_email, plan ON customers BEGIN
    INSERT INTO customers_fts (customers_fts, rowid, company, contact_email, plan)
    VALUES ('delete', OLD.id, OLD.company, OLD.contact_email, OLD.plan);
    INSERT INTO customers_fts (rowid, company, contact_email, plan) VALUES (NEW.id, NEW.company, NEW.contact_email, NEW.plan);
END;
CREATE TRIGGER customers_fts_delete AFTER DELETE ON customers BEGIN
    INSERT INTO customers_fts (customers_fts, rowid, company, contact_email, plan)
    VALUES ('delete', OLD.id, OLD.company, OLD.contact_email, OLD.plan);
END;

CREATE VIRTUAL TABLE tasks_fts USING fts5(kind, description,
    content = 'tasks', content_rowid = 'id', tokenize = 'trigram');
INSERT INTO tasks_fts (tasks_fts) VALUES ('rebuild');
CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO tasks_fts (rowid, kind, description) VALUES (NEW.id, NEW.kind, NEW.description);
END;
CREATE TRIGGER tasks_fts_update AFTER UPDATE OF kind, description ON tasks BEGIN
    INSERT INTO tasks_fts (tasks_fts, rowid, kind, description) VALUES ('delete', OLD.id, OLD.kind, OLD.description);
    INSERT INTO tasks_fts (rowid, kind, description) VALUES (NEW.id, NEW.kind, NEW.description);
END;
CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN
    INSERT INTO tasks_fts (tasks_fts, rowid, kind, description) VALUES ('delete', OLD.id, OLD.kind, OLD.description);
END;

CREATE VIRTUAL TABLE invoices_fts USING fts5(number, payer_email,
    content = 'invoices', content_rowid = 'id', tokenize = 'trigram');
INSERT INTO invoices_fts (invoices_fts) VALUES ('rebuild');
CREATE TRIGGER invoices_fts_insert AFTER INSERT ON invoices BEGIN
    INSERT INTO invoices_fts (rowid, number, payer_email) VALUES (NEW.id, NEW.number, NEW.payer_email);
END;
CREATE TRIGGER invoices_fts_update AFTER UPDATE OF number, payer_email ON invoices BEGIN
    INSERT INTO invoices_fts (invoices_fts, rowid, number, payer_email) VALUES ('delete', OLD.id, OLD.number, OLD.payer_email);
    INSERT INTO invoices_fts (rowid, number, payer_email) VALUES (NEW.id, NEW.number, NEW.payer_email);
END;
CREATE TRIGGER invoices_fts_delete AFTER DELETE ON invoices BEGIN
    INSERT INTO invoices_fts (invoices_fts, rowid, number, payer_email) VALUES ('delete', OLD.id, OLD.number, OLD.payer_email);
END;
