-- 0005 (PostgreSQL): what the agent cycles read, indexed so that a cycle's
-- cost follows its batch, not the size of the tables; as
-- db/migrations/0005. A partial index holds exactly a cycle's working set,
-- in the order the cycle takes it. The Go code names these indexes in
-- SQLite's INDEXED BY; PostgreSQL has no such clause and chooses a partial
-- index when the query's WHERE implies the index's predicate, so each
-- predicate here is the SQLite one, word for word.

-- The rolling e-mail caps count what left, or may have left, the outbox in
-- the last hour or day: sent and dry-run messages by sent_at, in-flight ones
-- by sending_at.
CREATE INDEX messages_left ON messages (sent_at) WHERE status IN ('sent','dry_run');
CREATE INDEX messages_sending ON messages (sending_at) WHERE status = 'sending';

-- The outbox: queued messages and failed ones with attempts left, oldest
-- first. "3" is db.MaxSendAttempts; the queries spell the same condition.
CREATE INDEX messages_sendable ON messages (created_at, id)
    WHERE status = 'queued' OR (status = 'failed' AND attempts < 3);

-- New leads BizDev can write to, oldest first (redefined by 0022).
CREATE INDEX leads_new_email ON leads (created_at, id) WHERE status = 'new' AND email IS NOT NULL;

-- Contacted leads by contact time, for the prospect simulator's cursor.
CREATE INDEX leads_contacted ON leads (contacted_at, id) WHERE status = 'contacted';

-- Responded leads waiting for onboarding, the ones that answered first first.
CREATE INDEX leads_responded ON leads (responded_at, id) WHERE status = 'responded';

-- Open invoices still waiting for a payment link, oldest first.
CREATE INDEX invoices_need_link ON invoices (created_at, id)
    WHERE status = 'open' AND payment_url = '' AND flag = '';

-- unbilled_tasks: the done tasks on no invoice line, by customer (see the
-- SQLite migration for why a table and not an index). Triggers keep it in
-- the same transaction as every change to tasks and invoice_lines. task_id
-- is a plain BIGINT key (no identity): it is always a task's id.
CREATE TABLE unbilled_tasks (
    task_id     BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL
);
CREATE INDEX unbilled_tasks_customer ON unbilled_tasks (customer_id, task_id);

INSERT INTO unbilled_tasks (task_id, customer_id)
SELECT t.id, t.customer_id FROM tasks AS t
WHERE t.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id);

-- SQLite's INSERT OR REPLACE is an upsert on the primary key here
-- (unbilled_tasks has no trigger, so replacing and updating the row are the
-- same).
CREATE FUNCTION tasks_unbilled_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO unbilled_tasks (task_id, customer_id)
    SELECT NEW.id, NEW.customer_id WHERE NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = NEW.id)
    ON CONFLICT (task_id) DO UPDATE SET customer_id = EXCLUDED.customer_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_unbilled_insert AFTER INSERT ON tasks
FOR EACH ROW WHEN (NEW.status = 'done') EXECUTE FUNCTION tasks_unbilled_insert();
CREATE FUNCTION tasks_unbilled_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM unbilled_tasks WHERE task_id = OLD.id;
    INSERT INTO unbilled_tasks (task_id, customer_id)
    SELECT NEW.id, NEW.customer_id
    WHERE NEW.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = NEW.id)
    ON CONFLICT (task_id) DO UPDATE SET customer_id = EXCLUDED.customer_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_unbilled_update AFTER UPDATE OF status, customer_id ON tasks
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.customer_id IS DISTINCT FROM NEW.customer_id)
EXECUTE FUNCTION tasks_unbilled_update();
CREATE FUNCTION tasks_unbilled_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM unbilled_tasks WHERE task_id = OLD.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_unbilled_delete AFTER DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_unbilled_delete();

CREATE FUNCTION invoice_lines_unbilled_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM unbilled_tasks WHERE task_id = NEW.task_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoice_lines_unbilled_insert AFTER INSERT ON invoice_lines
FOR EACH ROW EXECUTE FUNCTION invoice_lines_unbilled_insert();
CREATE FUNCTION invoice_lines_unbilled_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM unbilled_tasks WHERE task_id = NEW.task_id;
    INSERT INTO unbilled_tasks (task_id, customer_id)
    SELECT t.id, t.customer_id FROM tasks AS t
    WHERE t.id = OLD.task_id AND t.status = 'done'
      AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = OLD.task_id)
    ON CONFLICT (task_id) DO UPDATE SET customer_id = EXCLUDED.customer_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoice_lines_unbilled_update AFTER UPDATE OF task_id ON invoice_lines
FOR EACH ROW WHEN (OLD.task_id IS DISTINCT FROM NEW.task_id) EXECUTE FUNCTION invoice_lines_unbilled_update();
CREATE FUNCTION invoice_lines_unbilled_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO unbilled_tasks (task_id, customer_id)
    SELECT t.id, t.customer_id FROM tasks AS t
    WHERE t.id = OLD.task_id AND t.status = 'done'
      AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = OLD.task_id)
    ON CONFLICT (task_id) DO UPDATE SET customer_id = EXCLUDED.customer_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER invoice_lines_unbilled_delete AFTER DELETE ON invoice_lines
FOR EACH ROW EXECUTE FUNCTION invoice_lines_unbilled_delete();
