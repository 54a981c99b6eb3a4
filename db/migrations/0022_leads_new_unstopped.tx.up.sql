-- 0022: the new leads BizDev may write to are the new leads with an address
-- whose sequence has not ended before it started. A lead whose first-step
-- draft was rejected (OUTREACH_REVIEW) or who answered before any e-mail
-- stays 'new' with sequence_stop set; in the partial index of 0005 such
-- leads piled up at its head, oldest first, and every BizDev cycle stepped
-- over all of them before reaching a lead it could mail. The index now
-- leaves them out.
DROP INDEX leads_new_email;
CREATE INDEX leads_new_email ON leads (created_at, id) WHERE status = 'new' AND email IS NOT NULL AND sequence_stop = '';
