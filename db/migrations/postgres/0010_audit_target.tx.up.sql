-- 0010 (PostgreSQL): a record's audit entries are found by their target,
-- not by walking the whole audit log; as db/migrations/0010. The expression
-- matches the queries' lower(target) exactly, and created_at, id keep each
-- target's entries in order for LIMIT.
CREATE INDEX audit_log_target ON audit_log (lower(target), created_at, id);
