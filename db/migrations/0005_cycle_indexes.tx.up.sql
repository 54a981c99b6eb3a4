-- 0005: what the agent cycles read, indexed so that a cycle's cost follows
-- its batch, not the size of the tables. Each cycle query reads a working
-- set (the outbox, the leads waiting for a step, the unbilled work) that
-- stays small while the history (sent mail, billed tasks, paid invoices)
-- grows without bound; a partial index holds exactly that working set, in
-- the order the cycle takes it. db/queryplan_test.go proves each query's
-- plan on a large dataset. Independent of 0004.

-- The rolling e-mail caps count what left, or may have left, the outbox in
-- the last hour or day: sent and dry-run messages by sent_at, in-flight ones
-- by sending_at. Each part is a range scan of its own covering index.
CREATE INDEX messages_left ON messages (sent_at) WHERE status IN ('sent','dry_run');
CREATE INDEX messages_sending ON messages (sending_at) WHERE status = 'sending';

-- The outbox: queued messages and failed ones with attempts left, oldest
-- first. "3" is db.MaxSendAttempts; the queries spell the same condition, so
-- the planner can use the index (the query-plan test fails if they drift).
CREATE INDEX messages_sendable ON messages (created_at, id)
    WHERE status = 'queued' OR (status = 'failed' AND attempts < 3);

-- New leads BizDev can write to, oldest first. Website-only leads stay new
-- forever and would otherwise be stepped over on every cycle.
CREATE INDEX leads_new_email ON leads (created_at, id) WHERE status = 'new' AND email IS NOT NULL;

-- Contacted leads by contact time, for the prospect simulator's cursor.
CREATE INDEX leads_contacted ON leads (contacted_at, id) WHERE status = 'contacted';

-- Responded leads waiting for onboarding, the ones that answered first first.
CREATE INDEX leads_responded ON leads (responded_at, id) WHERE status = 'responded';

-- Open invoices still waiting for a payment link, oldest first.
CREATE INDEX invoices_need_link ON invoices (created_at, id)
    WHERE status = 'open' AND payment_url = '' AND flag = '';

-- unbilled_tasks: the done tasks on no invoice line, by customer. Whether a
-- task is billed is a fact of another table (invoice_lines), which no index
-- on tasks can express; without this, billing walks every done task ever
-- finished to find the few that are not billed. Triggers keep it in the same
-- transaction as every change to tasks and invoice_lines, so no code path
-- can make it drift; the billing queries still check invoice_lines for each
-- row they take (one probe of its UNIQUE task_id index), so a damaged file
-- can never bill a task twice; a task missing here would never be billed,
-- which check proves does not happen (invariant 3) and check
-- --repair-totals mends.
CREATE TABLE unbilled_tasks (
    task_id     INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL
);
CREATE INDEX unbilled_tasks_customer ON unbilled_tasks (customer_id, task_id);

INSERT INTO unbilled_tasks (task_id, customer_id)
SELECT t.id, t.customer_id FROM tasks AS t
WHERE t.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id);

CREATE TRIGGER tasks_unbilled_insert AFTER INSERT ON tasks
WHEN NEW.status = 'done' BEGIN
    INSERT OR REPLACE INTO unbilled_tasks (task_id, customer_id)
    SELECT NEW.id, NEW.customer_id WHERE NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = NEW.id);
END;
CREATE TRIGGER tasks_unbilled_update AFTER UPDATE OF status, customer_id ON tasks
WHEN OLD.status IS NOT NEW.status OR OLD.customer_id IS NOT NEW.customer_id BEGIN
    DELETE FROM unbilled_tasks WHERE task_id = OLD.id;
    INSERT OR REPLACE INTO unbilled_tasks (task_id, customer_id)
    SELECT NEW.id, NEW.customer_id
    WHERE NEW.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = NEW.id);
END;
CREATE TRIGGER tasks_unbilled_delete AFTER DELETE ON tasks BEGIN
    DELETE FROM unbilled_tasks WHERE task_id = OLD.id;
END;

CREATE TRIGGER invoice_lines_unbilled_insert AFTER INSERT ON invoice_lines BEGIN
    DELETE FROM unbilled_tasks WHERE task_id = NEW.task_id;
END;
CREATE TRIGGER invoice_lines_unbilled_update AFTER UPDATE OF task_id ON invoice_lines
WHEN OLD.task_id IS NOT NEW.task_id BEGIN
    DELETE FROM unbilled_tasks WHERE task_id = NEW.task_id;
    INSERT OR REPLACE INTO unbilled_tasks (task_id, customer_id)
    SELECT t.id, t.customer_id FROM tasks AS t
    WHERE t.id = OLD.task_id AND t.status = 'done'
      AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = OLD.task_id);
END;
CREATE TRIGGER invoice_lines_unbilled_delete AFTER DELETE ON invoice_lines BEGIN
    INSERT OR REPLACE INTO unbilled_tasks (task_id, customer_id)
    SELECT t.id, t.customer_id FROM tasks AS t
    WHERE t.id = OLD.task_id AND t.status = 'done'
      AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = OLD.task_id);
END;
