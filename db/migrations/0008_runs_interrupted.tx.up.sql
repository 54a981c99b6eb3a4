-- 0008: a cycle-log run its process never finished (killed, crashed) is
-- closed at the next start as 'interrupted', so the outcome CHECK of
-- agent_runs accepts that value.
--
-- SQLite cannot change a CHECK in place, so the table is rebuilt with the
-- same rows. It is not renamed: ALTER TABLE ... RENAME would rewrite the
-- kept_totals_expected view to name the old table. The rows are copied out,
-- the table is dropped (with its indexes and its kept-total triggers; no
-- trigger fires on DROP), created anew and filled back before its triggers
-- exist, so kept_totals, which already counts exactly these rows, is left as
-- it is. Nothing references agent_runs by foreign key.

-- Columns without a type have no affinity: every value is copied as it is.
CREATE TABLE agent_runs_0008 (id, agent, trigger, started_at, finished_at, outcome, message, counts);
INSERT INTO agent_runs_0008 SELECT id, agent, trigger, started_at, finished_at, outcome, message, counts FROM agent_runs;
DROP TABLE agent_runs;

CREATE TABLE agent_runs (
    id          INTEGER PRIMARY KEY,
    agent       TEXT NOT NULL CHECK (length(agent) > 0),
    trigger     TEXT NOT NULL CHECK (trigger IN ('autopilot','manual','restart')),
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    outcome     TEXT NOT NULL DEFAULT 'running' CHECK (outcome IN ('running','ok','failed','panicked','skipped','interrupted')),
    message     TEXT NOT NULL DEFAULT '',
    counts      TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO agent_runs (id, agent, trigger, started_at, finished_at, outcome, message, counts)
SELECT id, agent, trigger, started_at, finished_at, outcome, message, counts FROM agent_runs_0008 ORDER BY id;
DROP TABLE agent_runs_0008;

-- The indexes of 0001 and 0004.
CREATE INDEX agent_runs_started ON agent_runs (started_at, id);
CREATE INDEX agent_runs_agent ON agent_runs (agent, started_at);
CREATE INDEX agent_runs_outcome_started ON agent_runs (outcome, started_at, id);

-- The kept-total triggers of 0004, unchanged.
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
