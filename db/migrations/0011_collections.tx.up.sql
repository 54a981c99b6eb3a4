-- 0011: collections. The business tells its clients what they owe and
-- thanks them when they pay: welcome, invoice, receipt and reminder e-mails
-- go through an outbox of their own (client_messages), with the same
-- at-most-once states as outreach's (queued -> sending -> sent | dry_run |
-- failed, needs_review when the provider's answer was lost), but their own
-- caps and no outreach suppression: an unsubscribe from cold e-mail never
-- stops an invoice.

-- Why a client address must not be written to (a hard bounce, a
-- complaint), for the operator; empty when it is fine. A flagged customer
-- gets no client e-mail until an operator clears the flag.
ALTER TABLE customers ADD COLUMN mail_flag TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN mail_flagged_at TIMESTAMP;

-- collection_jobs: what the Collections agent still has to write. Triggers
-- add the welcome of every new customer, the invoice e-mail of every issued
-- invoice and the receipt of every paid one in the transaction that made
-- them, whoever made them (onboarding, billing, the webhook, reconcile, an
-- admin's "mark paid"), so none is ever missed and no cycle scans customers
-- or invoices to find them. Collections adds the reminders of an invoice
-- (one job per DUNNING_SCHEDULE step) when it writes the invoice e-mail. A
-- job is deleted in the transaction that queues its message.
CREATE TABLE collection_jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('welcome','invoice','receipt','reminder')),
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    invoice_id  INTEGER REFERENCES invoices (id) ON DELETE CASCADE,
    -- the reminder's step, as DUNNING_SCHEDULE spells it ("-3d", "0d", "+7d").
    step        TEXT NOT NULL DEFAULT '',
    run_at      TIMESTAMP NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    -- a job whose e-mail could not be written (a document that failed to
    -- render) is tried again later, with why, while the others go on.
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error  TEXT NOT NULL DEFAULT '',
    CHECK (kind = 'welcome' OR invoice_id IS NOT NULL),
    UNIQUE (kind, customer_id, invoice_id, step)
);
CREATE INDEX collection_jobs_run ON collection_jobs (run_at, id);
CREATE INDEX collection_jobs_invoice ON collection_jobs (invoice_id) WHERE invoice_id IS NOT NULL;

CREATE TRIGGER customers_collect_welcome AFTER INSERT ON customers BEGIN
    INSERT INTO collection_jobs (kind, customer_id, run_at, created_at)
    VALUES ('welcome', NEW.id, NEW.created_at, NEW.created_at);
END;
CREATE TRIGGER invoices_collect_issued_insert AFTER INSERT ON invoices WHEN NEW.status = 'open' BEGIN
    INSERT INTO collection_jobs (kind, customer_id, invoice_id, run_at, created_at)
    VALUES ('invoice', NEW.customer_id, NEW.id, COALESCE(NEW.issued_at, NEW.created_at), NEW.updated_at);
END;
CREATE TRIGGER invoices_collect_issued_update AFTER UPDATE OF status ON invoices
WHEN OLD.status = 'draft' AND NEW.status = 'open' BEGIN
    INSERT INTO collection_jobs (kind, customer_id, invoice_id, run_at, created_at)
    VALUES ('invoice', NEW.customer_id, NEW.id, COALESCE(NEW.issued_at, NEW.updated_at), NEW.updated_at);
END;
CREATE TRIGGER invoices_collect_paid AFTER UPDATE OF status ON invoices
WHEN NEW.status = 'paid' AND OLD.status IS NOT 'paid' BEGIN
    INSERT INTO collection_jobs (kind, customer_id, invoice_id, run_at, created_at)
    VALUES ('receipt', NEW.customer_id, NEW.id, COALESCE(NEW.paid_at, NEW.updated_at), NEW.updated_at)
    ON CONFLICT DO NOTHING;
END;

-- client_messages: the clients' outbox. dedupe_key makes each message at
-- most once, ever: "welcome:7", "invoice:12", "receipt:12",
-- "reminder:12:+7d", "link:7:<slot>" (a fresh portal link asked for on the
-- sign-in page, at most one per customer per slot). The body holds no
-- secret: where the client's portal link goes it holds a placeholder, and
-- the link (whose token only the hash of is kept, in portal_links) is made
-- when the message is sent.
CREATE TABLE client_messages (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    invoice_id   INTEGER REFERENCES invoices (id) ON DELETE RESTRICT,
    kind         TEXT NOT NULL CHECK (kind IN ('welcome','invoice','receipt','reminder','portal_link')),
    dedupe_key   TEXT NOT NULL UNIQUE CHECK (length(dedupe_key) BETWEEN 1 AND 100),
    to_addr      TEXT NOT NULL CHECK (length(to_addr) > 0),
    subject      TEXT NOT NULL,
    body_text    TEXT NOT NULL,
    body_html    TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued','sending','sent','dry_run','failed','suppressed')),
    provider_id  TEXT NOT NULL DEFAULT '',
    error        TEXT NOT NULL DEFAULT '',
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    needs_review BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMP NOT NULL,
    sending_at   TIMESTAMP,
    sent_at      TIMESTAMP,
    updated_at   TIMESTAMP NOT NULL
);
-- The same working-set indexes as the outreach outbox's (0005): what is
-- still to send, what left in the caps' windows, what is in flight. Portal
-- links asked for on the sign-in page have caps of their own, so that
-- nobody can use up the caps of invoices and receipts by asking for links.
CREATE INDEX client_messages_sendable ON client_messages (created_at, id)
    WHERE status = 'queued' OR (status = 'failed' AND attempts < 3);
CREATE INDEX client_messages_left ON client_messages (sent_at)
    WHERE status IN ('sent','dry_run') AND kind <> 'portal_link';
CREATE INDEX client_links_left ON client_messages (sent_at)
    WHERE status IN ('sent','dry_run') AND kind = 'portal_link';
CREATE INDEX client_messages_sending ON client_messages (sending_at) WHERE status = 'sending';
CREATE INDEX client_messages_created ON client_messages (created_at, id);
CREATE INDEX client_messages_customer ON client_messages (customer_id, id);
CREATE INDEX client_messages_invoice ON client_messages (invoice_id, id) WHERE invoice_id IS NOT NULL;

-- The files sent with a client message (the invoice or receipt PDF), kept
-- as sent so that the admin shows exactly what the client received.
CREATE TABLE client_attachments (
    id           INTEGER PRIMARY KEY,
    message_id   INTEGER NOT NULL REFERENCES client_messages (id) ON DELETE CASCADE,
    filename     TEXT NOT NULL CHECK (length(filename) BETWEEN 1 AND 200),
    content_type TEXT NOT NULL CHECK (length(content_type) > 0),
    content      BLOB NOT NULL
);
CREATE INDEX client_attachments_message ON client_attachments (message_id, id);

-- portal_links: the links in client e-mails. Only the SHA-256 (hex) of a
-- link's token is stored; the token exists in the e-mail alone. A link
-- works until expires_at (PORTAL_LINK_TTL, 30 days by default) unless
-- revoked; opening it exchanges it for a portal session.
CREATE TABLE portal_links (
    token_hash  TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    message_id  INTEGER REFERENCES client_messages (id) ON DELETE SET NULL,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    revoked_at  TIMESTAMP,
    CHECK (expires_at > created_at)
) WITHOUT ROWID;
CREATE INDEX portal_links_customer ON portal_links (customer_id);

-- portal_sessions: a client's browser after it opened a link, by the
-- SHA-256 (hex) of its cookie.
CREATE TABLE portal_sessions (
    token_hash  TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL
) WITHOUT ROWID;
CREATE INDEX portal_sessions_customer ON portal_sessions (customer_id);
CREATE INDEX portal_sessions_expires ON portal_sessions (expires_at);
