-- 0008 (PostgreSQL): a cycle-log run its process never finished (killed,
-- crashed) is closed at the next start as 'interrupted', so the outcome
-- CHECK of agent_runs accepts that value; as db/migrations/0008.
--
-- SQLite cannot change a CHECK in place and rebuilds the table (with its
-- indexes and kept-total triggers, recreated unchanged). PostgreSQL can:
-- the constraint (named by PostgreSQL's default, table_column_check) is
-- replaced, and the table, its indexes and its triggers stay as they are.
ALTER TABLE agent_runs DROP CONSTRAINT agent_runs_outcome_check;
ALTER TABLE agent_runs ADD CONSTRAINT agent_runs_outcome_check
    CHECK (outcome IN ('running','ok','failed','panicked','skipped','interrupted'));
