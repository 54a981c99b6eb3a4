-- 0013: plans and prices an owner controls. The catalogue (the kinds of
-- work with their prices, and the plans made of them) moves from Go code
-- into the store, seeded once from agents.DefaultCatalogue and edited in
-- the admin (/admin/plans). Prices are integer cents in a lower-case ISO
-- 4217 currency; a plan's items name kinds of the plan's own currency (the
-- composite foreign keys), so no plan mixes currencies.

-- task_kinds: what the business sells. kind is the stable key stored on
-- each task (tasks.kind); title is what a client reads. The price is at
-- most Stripe's largest amount (999,999.99).
CREATE TABLE task_kinds (
    kind        TEXT PRIMARY KEY CHECK (length(kind) BETWEEN 1 AND 64 AND kind GLOB '[a-z]*' AND kind NOT GLOB '*[^a-z0-9_]*'),
    title       TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    price_cents INTEGER NOT NULL CHECK (typeof(price_cents) = 'integer' AND price_cents BETWEEN 0 AND 99999999),
    currency    TEXT NOT NULL CHECK (length(currency) = 3 AND currency NOT GLOB '*[^a-z]*'),
    updated_at  TIMESTAMP NOT NULL,
    UNIQUE (kind, currency)
);

-- plans: what a customer is on. billing 'once' opens the plan's tasks at
-- conversion; 'monthly' opens them again every calendar month
-- (customers.next_period_at). position orders the plans on the admin page
-- and picks the default plan (the first active one). An inactive plan is
-- not chosen for new customers; its customers keep it.
CREATE TABLE plans (
    name       TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64 AND name GLOB '[a-z]*' AND name NOT GLOB '*[^a-z0-9_]*'),
    title      TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    currency   TEXT NOT NULL CHECK (length(currency) = 3 AND currency NOT GLOB '*[^a-z]*'),
    billing    TEXT NOT NULL CHECK (billing IN ('once','monthly')),
    position   INTEGER NOT NULL CHECK (typeof(position) = 'integer' AND position >= 0),
    active     BOOLEAN NOT NULL DEFAULT TRUE CHECK (active IN (0, 1)),
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (name, currency)
);
CREATE INDEX plans_position ON plans (position, name);

-- plan_items: the tasks a plan opens, one per row, in position order (a
-- kind may be listed twice). The kind must exist in the plan's currency.
CREATE TABLE plan_items (
    plan     TEXT NOT NULL,
    position INTEGER NOT NULL CHECK (typeof(position) = 'integer' AND position >= 0),
    kind     TEXT NOT NULL,
    currency TEXT NOT NULL,
    PRIMARY KEY (plan, position),
    FOREIGN KEY (plan, currency) REFERENCES plans (name, currency) ON DELETE CASCADE ON UPDATE CASCADE,
    FOREIGN KEY (kind, currency) REFERENCES task_kinds (kind, currency) ON DELETE RESTRICT ON UPDATE CASCADE
) WITHOUT ROWID;
CREATE INDEX plan_items_kind ON plan_items (kind, currency);

-- plan_niches: the lead niches a plan is chosen for at conversion,
-- compared lower-cased and trimmed.
CREATE TABLE plan_niches (
    plan  TEXT NOT NULL REFERENCES plans (name) ON DELETE CASCADE ON UPDATE CASCADE,
    niche TEXT NOT NULL CHECK (length(niche) BETWEEN 1 AND 100 AND niche = lower(trim(niche))),
    PRIMARY KEY (plan, niche)
) WITHOUT ROWID;
CREATE INDEX plan_niches_niche ON plan_niches (niche);

-- A customer's plan is changed only to a plan of the catalogue. (Customers
-- stored before the catalogue was may name any plan; inserts are checked
-- by onboarding, which takes its plans from the catalogue.)
CREATE TRIGGER customers_plan_known
BEFORE UPDATE OF plan ON customers
WHEN NEW.plan IS NOT OLD.plan AND NOT EXISTS (SELECT 1 FROM plans WHERE name = NEW.plan)
BEGIN
    SELECT RAISE(ABORT, 'customer: unknown plan');
END;

-- next_period_at: when a customer on a monthly plan has its plan's tasks
-- opened again; NULL on a one-off plan. The Onboarding cycle reads the
-- customers due (next_period_at <= now) as a range of the partial index,
-- which holds only the customers on monthly plans.
ALTER TABLE customers ADD COLUMN next_period_at TIMESTAMP;
CREATE INDEX customers_next_period ON customers (next_period_at, id) WHERE next_period_at IS NOT NULL;
