-- 0015 (PostgreSQL): outreach sequences and sorted replies; as
-- db/migrations/0015. sequence_step is how many steps a lead was sent;
-- next_step_at is when the next follow-up is due (NULL: none, said in
-- sequence_stop). BizDev reads the due follow-ups from leads_next_step.
ALTER TABLE leads ADD COLUMN sequence_step BIGINT NOT NULL DEFAULT 0 CHECK (sequence_step >= 0);
ALTER TABLE leads ADD COLUMN next_step_at TIMESTAMPTZ;
ALTER TABLE leads ADD COLUMN sequence_stop TEXT NOT NULL DEFAULT '';
CREATE INDEX leads_next_step ON leads (next_step_at, id) WHERE status = 'contacted' AND next_step_at IS NOT NULL;

-- Each outbox message is one step of its lead's sequence.
ALTER TABLE messages ADD COLUMN step BIGINT NOT NULL DEFAULT 1 CHECK (step >= 1);

-- Replies are sorted (agents.SortReply) by rules, the LLM or an operator;
-- message_id is the outreach message the reply answers, when it could be told.
ALTER TABLE replies ADD COLUMN class TEXT NOT NULL DEFAULT ''
    CHECK (class IN ('','interested','not_now','not_interested','out_of_office','unsubscribe','bounce','other'));
ALTER TABLE replies ADD COLUMN class_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE replies ADD COLUMN class_by TEXT NOT NULL DEFAULT '' CHECK (class_by IN ('','rules','llm','operator'));
ALTER TABLE replies ADD COLUMN message_id BIGINT REFERENCES messages (id) ON DELETE SET NULL;
CREATE INDEX replies_received ON replies (received_at, id);
