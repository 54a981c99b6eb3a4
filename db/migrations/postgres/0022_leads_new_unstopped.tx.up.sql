-- 0022 (PostgreSQL): the new leads BizDev may write to are the new leads
-- with an address whose sequence has not ended before it started; as
-- db/migrations/0022. Leads that stay 'new' with sequence_stop set (a
-- rejected first-step draft, an answer before any e-mail) are left out of
-- the index, so a cycle no longer steps over them.
DROP INDEX leads_new_email;
CREATE INDEX leads_new_email ON leads (created_at, id) WHERE status = 'new' AND email IS NOT NULL AND sequence_stop = '';
