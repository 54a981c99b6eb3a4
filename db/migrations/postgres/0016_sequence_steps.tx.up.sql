-- 0016 (PostgreSQL): the follow-ups of the outreach sequences, editable in
-- the admin (/admin/sequences); as db/migrations/0016. A pack's follow-ups,
-- steps 2 to N, live here; each is sent delay_days business days after the
-- step before it. (SQLite's typeof(x) = 'integer' is dropped from the
-- CHECKs: a BIGINT column holds nothing else.)
CREATE TABLE sequence_steps (
    pack       TEXT NOT NULL CHECK (length(pack) BETWEEN 1 AND 64),
    step       BIGINT NOT NULL CHECK (step BETWEEN 2 AND 6),
    delay_days BIGINT NOT NULL CHECK (delay_days BETWEEN 1 AND 30),
    body       TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 5000),
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (pack, step)
);
