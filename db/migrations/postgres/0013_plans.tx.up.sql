-- 0013 (PostgreSQL): plans and prices an owner controls; as
-- db/migrations/0013. Prices are integer cents in a lower-case ISO 4217
-- currency; a plan's items name kinds of the plan's own currency (the
-- composite foreign keys), so no plan mixes currencies.
--
-- Where PostgreSQL differs: SQLite's GLOB patterns are regular expressions
-- (GLOB '[a-z]*' is ~ '^[a-z]', NOT GLOB '*[^a-z0-9_]*' is !~ '[^a-z0-9_]',
-- both case-sensitive like GLOB); typeof(x) = 'integer' is dropped from the
-- CHECKs, since a BIGINT column holds nothing else (SQLite would store a
-- text or real there); and plans.active has no CHECK (active IN (0, 1)):
-- a BOOLEAN is already only true or false.

-- task_kinds: what the business sells. The price is at most Stripe's
-- largest amount (999,999.99).
CREATE TABLE task_kinds (
    kind        TEXT PRIMARY KEY CHECK (length(kind) BETWEEN 1 AND 64 AND kind ~ '^[a-z]' AND kind !~ '[^a-z0-9_]'),
    title       TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    price_cents BIGINT NOT NULL CHECK (price_cents BETWEEN 0 AND 99999999),
    currency    TEXT NOT NULL CHECK (length(currency) = 3 AND currency !~ '[^a-z]'),
    updated_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (kind, currency)
);

-- plans: what a customer is on. billing 'once' opens the plan's tasks at
-- conversion; 'monthly' opens them again every calendar month. position
-- orders the plans and picks the default plan (the first active one).
CREATE TABLE plans (
    name       TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64 AND name ~ '^[a-z]' AND name !~ '[^a-z0-9_]'),
    title      TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    currency   TEXT NOT NULL CHECK (length(currency) = 3 AND currency !~ '[^a-z]'),
    billing    TEXT NOT NULL CHECK (billing IN ('once','monthly')),
    position   BIGINT NOT NULL CHECK (position >= 0),
    active     BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (name, currency)
);
CREATE INDEX plans_position ON plans (position, name);

-- plan_items: the tasks a plan opens, one per row, in position order. The
-- kind must exist in the plan's currency.
CREATE TABLE plan_items (
    plan     TEXT NOT NULL,
    position BIGINT NOT NULL CHECK (position >= 0),
    kind     TEXT NOT NULL,
    currency TEXT NOT NULL,
    PRIMARY KEY (plan, position),
    FOREIGN KEY (plan, currency) REFERENCES plans (name, currency) ON DELETE CASCADE ON UPDATE CASCADE,
    FOREIGN KEY (kind, currency) REFERENCES task_kinds (kind, currency) ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE INDEX plan_items_kind ON plan_items (kind, currency);

-- plan_niches: the lead niches a plan is chosen for at conversion,
-- compared lower-cased and trimmed (SQLite's trim() and PostgreSQL's both
-- strip spaces only).
CREATE TABLE plan_niches (
    plan  TEXT NOT NULL REFERENCES plans (name) ON DELETE CASCADE ON UPDATE CASCADE,
    niche TEXT NOT NULL CHECK (length(niche) BETWEEN 1 AND 100 AND niche = lower(trim(niche))),
    PRIMARY KEY (plan, niche)
);
CREATE INDEX plan_niches_niche ON plan_niches (niche);

-- A customer's plan is changed only to a plan of the catalogue.
CREATE FUNCTION customers_plan_known() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM plans WHERE name = NEW.plan) THEN
        RAISE EXCEPTION 'customer: unknown plan' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER customers_plan_known
BEFORE UPDATE OF plan ON customers
FOR EACH ROW WHEN (NEW.plan IS DISTINCT FROM OLD.plan) EXECUTE FUNCTION customers_plan_known();

-- next_period_at: when a customer on a monthly plan has its plan's tasks
-- opened again; NULL on a one-off plan.
ALTER TABLE customers ADD COLUMN next_period_at TIMESTAMPTZ;
CREATE INDEX customers_next_period ON customers (next_period_at, id) WHERE next_period_at IS NOT NULL;
