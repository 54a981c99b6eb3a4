-- 0017: the review switch (OUTREACH_REVIEW=true). BizDev writes each
-- outreach e-mail, first steps and follow-ups, as a draft here instead of
-- queueing it; an admin approves (the message enters the outbox in the
-- same transaction, through the caps, suppression and at-most-once sending
-- like any other), edits (revision counts the edits) or rejects it (the
-- lead's sequence ends, "draft rejected") in /admin/outreach/drafts. A
-- reply, bounce or unsubscribe withdraws a waiting draft (reason says why).
--
-- body is the e-mail without its unsubscribe footer, which names the
-- outbox message and is added on approval. in_reply_to and refs are the
-- threading headers of a follow-up, as the draft was written (the sender
-- sets them again from the same thread at send time).
--
-- A lead has at most one waiting draft per step: the partial unique index
-- outreach_drafts_waiting_step, which also finds a lead's waiting draft.
-- Only waiting drafts are unique, so a lead re-queued after a DRY_RUN
-- contact gets a fresh first-step draft. outreach_drafts_waiting holds the
-- waiting drafts in arrival order: the admin list and its count.
CREATE TABLE outreach_drafts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id     INTEGER NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    step        INTEGER NOT NULL CHECK (typeof(step) = 'integer' AND step >= 1),
    template    TEXT NOT NULL DEFAULT '',
    to_addr     TEXT NOT NULL,
    subject     TEXT NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    body        TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    in_reply_to TEXT NOT NULL DEFAULT '',
    refs        TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'approved', 'rejected', 'withdrawn')),
    revision    INTEGER NOT NULL DEFAULT 1 CHECK (typeof(revision) = 'integer' AND revision >= 1),
    reason      TEXT NOT NULL DEFAULT '',
    message_id  INTEGER REFERENCES messages (id) ON DELETE SET NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    decided_at  TIMESTAMP,
    decided_by  TEXT NOT NULL DEFAULT '',
    CHECK ((status = 'waiting') = (decided_at IS NULL))
);
CREATE UNIQUE INDEX outreach_drafts_waiting_step ON outreach_drafts (lead_id, step) WHERE status = 'waiting';
CREATE INDEX outreach_drafts_waiting ON outreach_drafts (created_at, id) WHERE status = 'waiting';
CREATE INDEX outreach_drafts_lead ON outreach_drafts (lead_id, id);
