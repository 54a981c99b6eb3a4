-- 0001: the whole first schema. Every rule the business depends on is a
-- constraint here, so that no code path (agent, admin, import) can break it.

-- settings: anything an admin can change at run time (autopilot switch,
-- interval, e-mail caps). Values are text; the store parses them.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 64),
    value      TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- counters: named gapless sequences (invoice numbers). Incremented inside
-- the transaction that uses the value, so a rolled-back issue reuses nothing
-- that was ever shown.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL CHECK (value >= 0)
);

CREATE TABLE leads (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL DEFAULT '',
    -- lower-cased; NULL when the lead only has a website.
    email        TEXT UNIQUE CHECK (email IS NULL OR (email = lower(email) AND email LIKE '%_@_%')),
    company      TEXT NOT NULL CHECK (length(company) > 0),
    -- registrable domain (publicsuffix); NULL for free-mail providers, so two
    -- gmail.com contacts are not duplicates of each other.
    domain_key   TEXT UNIQUE CHECK (domain_key IS NULL OR (domain_key = lower(domain_key) AND length(domain_key) > 0)),
    niche        TEXT NOT NULL DEFAULT '',
    website      TEXT NOT NULL DEFAULT '',
    source       TEXT NOT NULL CHECK (length(source) > 0),
    status       TEXT NOT NULL DEFAULT 'new'
                 CHECK (status IN ('new','contacted','responded','converted','bounced','unsubscribed','failed','dead')),
    -- contacted only in DRY_RUN: re-queued for real sending by an admin action.
    dry_run      BOOLEAN NOT NULL DEFAULT FALSE,
    contacted_at TIMESTAMP,
    responded_at TIMESTAMP,
    converted_at TIMESTAMP,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    CHECK (email IS NOT NULL OR website <> '')
);
CREATE INDEX leads_status_created ON leads (status, created_at, id);
CREATE INDEX leads_created ON leads (created_at, id);

-- replies: inbound answers to outreach, real or simulated (labelled).
CREATE TABLE replies (
    id          INTEGER PRIMARY KEY,
    lead_id     INTEGER NOT NULL REFERENCES leads (id) ON DELETE RESTRICT,
    from_addr   TEXT NOT NULL,
    subject     TEXT NOT NULL DEFAULT '',
    body        TEXT NOT NULL DEFAULT '',
    simulated   BOOLEAN NOT NULL DEFAULT FALSE,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX replies_lead ON replies (lead_id);

CREATE TABLE customers (
    id                 INTEGER PRIMARY KEY,
    company            TEXT NOT NULL CHECK (length(company) > 0),
    contact_email      TEXT NOT NULL UNIQUE CHECK (contact_email = lower(contact_email) AND contact_email LIKE '%_@_%'),
    plan               TEXT NOT NULL CHECK (length(plan) > 0),
    lead_id            INTEGER UNIQUE REFERENCES leads (id) ON DELETE RESTRICT,
    status             TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','paused','closed')),
    stripe_customer_id TEXT NOT NULL DEFAULT '',
    -- SHA-256 (hex) of the portal token; the plain token exists only in the link.
    portal_token_hash  TEXT NOT NULL UNIQUE CHECK (length(portal_token_hash) = 64),
    token_created_at   TIMESTAMP NOT NULL,
    token_revoked_at   TIMESTAMP,
    created_at         TIMESTAMP NOT NULL
);
CREATE INDEX customers_created ON customers (created_at, id);

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY,
    customer_id      INTEGER NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    kind             TEXT NOT NULL CHECK (length(kind) > 0),
    description      TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','running','done','failed')),
    currency         TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    reward_cents     INTEGER NOT NULL DEFAULT 0 CHECK (reward_cents >= 0),
    cost_cents       INTEGER NOT NULL DEFAULT 0 CHECK (cost_cents >= 0),
    -- reward - cost; may be negative, never clamped.
    profit_cents     INTEGER NOT NULL DEFAULT 0 CHECK (profit_cents = reward_cents - cost_cents),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_expires_at TIMESTAMP,
    started_at       TIMESTAMP,
    result           TEXT NOT NULL DEFAULT '',
    last_error       TEXT NOT NULL DEFAULT '',
    completed_at     TIMESTAMP,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    CHECK (status <> 'running' OR lease_expires_at IS NOT NULL),
    CHECK (status <> 'done' OR completed_at IS NOT NULL)
);
CREATE INDEX tasks_status_created ON tasks (status, created_at, id);
CREATE INDEX tasks_customer ON tasks (customer_id, status);
CREATE INDEX tasks_completed ON tasks (completed_at, id);

CREATE TABLE invoices (
    id                     INTEGER PRIMARY KEY,
    customer_id            INTEGER NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    -- assigned when issued (draft -> open), gapless, never reused.
    number                 TEXT UNIQUE,
    currency               TEXT NOT NULL CHECK (length(currency) = 3 AND currency = lower(currency)),
    amount_cents           INTEGER NOT NULL CHECK (amount_cents >= 0),
    status                 TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft','open','paid','void','refunded')),
    issued_at              TIMESTAMP,
    due_at                 TIMESTAMP,
    stripe_price_id        TEXT NOT NULL DEFAULT '',
    stripe_payment_link_id TEXT NOT NULL DEFAULT '',
    payment_url            TEXT NOT NULL DEFAULT '',
    paid_at                TIMESTAMP,
    payer_email            TEXT NOT NULL DEFAULT '',
    payer_name             TEXT NOT NULL DEFAULT '',
    -- why an operator must look at it (over the Stripe maximum, amount mismatch).
    flag                   TEXT NOT NULL DEFAULT '',
    created_at             TIMESTAMP NOT NULL,
    updated_at             TIMESTAMP NOT NULL,
    CHECK (status = 'draft' OR number IS NOT NULL),
    CHECK (status NOT IN ('paid','refunded') OR paid_at IS NOT NULL)
);
CREATE INDEX invoices_customer ON invoices (customer_id, status);
CREATE INDEX invoices_status_created ON invoices (status, created_at, id);

-- A paid (or refunded) invoice never goes back to draft or open, whoever asks.
CREATE TRIGGER invoices_paid_is_final
BEFORE UPDATE OF status ON invoices
WHEN OLD.status IN ('paid','refunded') AND NEW.status IN ('draft','open')
BEGIN
    SELECT RAISE(ABORT, 'invoice: a paid invoice never returns to open');
END;

CREATE TABLE invoice_lines (
    id           INTEGER PRIMARY KEY,
    invoice_id   INTEGER NOT NULL REFERENCES invoices (id) ON DELETE RESTRICT,
    -- a task is billed at most once, ever.
    task_id      INTEGER NOT NULL UNIQUE REFERENCES tasks (id) ON DELETE RESTRICT,
    description  TEXT NOT NULL DEFAULT '',
    amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id);

-- messages: the outbox, one row per outreach e-mail.
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    lead_id     INTEGER NOT NULL REFERENCES leads (id) ON DELETE RESTRICT,
    to_addr     TEXT NOT NULL,
    template    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued','sending','sent','dry_run','failed','suppressed')),
    provider_id TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- set when the outcome of a 'sending' message is unknown after a crash.
    needs_review BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMP NOT NULL,
    sending_at  TIMESTAMP,
    sent_at     TIMESTAMP,
    updated_at  TIMESTAMP NOT NULL
);
CREATE INDEX messages_status_created ON messages (status, created_at, id);
CREATE INDEX messages_sent ON messages (sent_at);
CREATE INDEX messages_lead ON messages (lead_id);

CREATE TABLE suppressions (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('address','domain')),
    value      TEXT NOT NULL CHECK (value = lower(value) AND length(value) > 0),
    reason     TEXT NOT NULL CHECK (reason IN ('unsubscribed','bounced','complaint','manual')),
    source     TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    UNIQUE (kind, value)
);

CREATE TABLE stripe_events (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE CHECK (length(event_id) > 0),
    type        TEXT NOT NULL,
    invoice_id  INTEGER REFERENCES invoices (id) ON DELETE RESTRICT,
    outcome     TEXT NOT NULL DEFAULT '',
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX stripe_events_invoice ON stripe_events (invoice_id);
CREATE INDEX stripe_events_received ON stripe_events (received_at);

-- agent_runs: the persisted cycle log.
CREATE TABLE agent_runs (
    id          INTEGER PRIMARY KEY,
    agent       TEXT NOT NULL CHECK (length(agent) > 0),
    trigger     TEXT NOT NULL CHECK (trigger IN ('autopilot','manual','restart')),
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    outcome     TEXT NOT NULL DEFAULT 'running' CHECK (outcome IN ('running','ok','failed','panicked','skipped')),
    message     TEXT NOT NULL DEFAULT '',
    counts      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX agent_runs_started ON agent_runs (started_at, id);
CREATE INDEX agent_runs_agent ON agent_runs (agent, started_at);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
    password_hash TEXT NOT NULL CHECK (length(password_hash) > 0),
    role          TEXT NOT NULL CHECK (role IN ('admin','viewer')),
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE sessions (
    -- SHA-256 (hex) of the session cookie value.
    token_hash   TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '',
    remote_addr TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX audit_log_created ON audit_log (created_at, id);
