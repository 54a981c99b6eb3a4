-- 0015: outreach sequences and sorted replies.
--
-- A lead's sequence is its pack's first e-mail and the follow-ups after it
-- (agents.Sequences). sequence_step is how many steps it was sent;
-- next_step_at is when the next follow-up is due (NULL: none, because the
-- sequence ended, the lead answered, or an operator stopped it, said in
-- sequence_stop). BizDev reads the due follow-ups from leads_next_step, a
-- partial index of the contacted leads waiting for one.
ALTER TABLE leads ADD COLUMN sequence_step INTEGER NOT NULL DEFAULT 0 CHECK (sequence_step >= 0);
ALTER TABLE leads ADD COLUMN next_step_at TIMESTAMP;
ALTER TABLE leads ADD COLUMN sequence_stop TEXT NOT NULL DEFAULT '';
CREATE INDEX leads_next_step ON leads (next_step_at, id) WHERE status = 'contacted' AND next_step_at IS NOT NULL;

-- Each outbox message is one step of its lead's sequence; follow-ups
-- thread under the earlier steps by their Message-IDs (agents.OutboxMessageID).
ALTER TABLE messages ADD COLUMN step INTEGER NOT NULL DEFAULT 1 CHECK (step >= 1);

-- Replies are sorted (agents.SortReply): by rules, by the LLM executor, or
-- by an operator who changed the decision; reason says why. message_id is
-- the outreach message the reply answers, when it could be told.
ALTER TABLE replies ADD COLUMN class TEXT NOT NULL DEFAULT ''
    CHECK (class IN ('','interested','not_now','not_interested','out_of_office','unsubscribe','bounce','other'));
ALTER TABLE replies ADD COLUMN class_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE replies ADD COLUMN class_by TEXT NOT NULL DEFAULT '' CHECK (class_by IN ('','rules','llm','operator'));
ALTER TABLE replies ADD COLUMN message_id INTEGER REFERENCES messages (id) ON DELETE SET NULL;
CREATE INDEX replies_received ON replies (received_at, id);
