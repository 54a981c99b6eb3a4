-- 0016: the follow-ups of the outreach sequences, editable in the admin
-- (/admin/sequences). A pack's first e-mail stays in Go (its variants,
-- agents/templates.go); its follow-ups, steps 2 to N, live here, seeded once
-- from agents.DefaultFollowUps (agents.SeedSequences). Each is sent
-- delay_days business days after the step before it; body takes the first
-- e-mail's placeholders. A pack with no rows has no follow-ups. The store
-- keeps a pack's steps contiguous from 2 (db.ReplaceSequenceSteps writes a
-- pack's steps in one transaction).
CREATE TABLE sequence_steps (
    pack       TEXT NOT NULL CHECK (length(pack) BETWEEN 1 AND 64),
    step       INTEGER NOT NULL CHECK (typeof(step) = 'integer' AND step BETWEEN 2 AND 6),
    delay_days INTEGER NOT NULL CHECK (typeof(delay_days) = 'integer' AND delay_days BETWEEN 1 AND 30),
    body       TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 5000),
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (pack, step)
) WITHOUT ROWID;
