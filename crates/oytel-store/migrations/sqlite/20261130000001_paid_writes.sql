-- One idempotent path for every paid or state-changing write.
--
-- An idempotency key names the operation it was used for and the resource it created (an
-- order today; top-ups and refunds later), not only an order. Keys stored by release 0.1 were
-- all provisionings that created orders. `order_id` stays, still written for orders, so that
-- an instance of release 0.1 running beside this one during a rolling upgrade (PostgreSQL)
-- reads completions as before.
ALTER TABLE idempotency_keys ADD COLUMN operation TEXT NOT NULL DEFAULT 'esim.provision';
ALTER TABLE idempotency_keys ADD COLUMN resource_kind TEXT;
ALTER TABLE idempotency_keys ADD COLUMN resource_id TEXT;
UPDATE idempotency_keys SET resource_kind = 'order', resource_id = order_id
    WHERE order_id IS NOT NULL;

-- An eSIM may have several orders (its provisioning, then top-ups): `orders.esim_id` is no
-- longer unique. SQLite cannot drop a column's constraint, so the table is rebuilt as
-- https://sqlite.org/lang_altertable.html#otheralter describes; the store runs migrations
-- with foreign-key enforcement off, as that procedure requires, and checks the keys after
-- (`SqliteStore::open`). Sequence numbers are kept: list cursors stay valid.
CREATE TABLE orders_rebuilt (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT NOT NULL UNIQUE,
    partner_id           TEXT NOT NULL REFERENCES partners (id),
    environment          TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    esim_id              TEXT NOT NULL,
    plan_id              TEXT NOT NULL,
    term_months          INTEGER NOT NULL CHECK (term_months IN (1, 3, 6, 12)),
    amount_cents         INTEGER NOT NULL CHECK (amount_cents >= 0),
    currency             TEXT NOT NULL,
    customer_email       TEXT NOT NULL,
    customer_name        TEXT NOT NULL,
    reference_id         TEXT,
    balance_after_cents  INTEGER NOT NULL,
    request_id           TEXT NOT NULL,
    created_at           TEXT NOT NULL
);
INSERT INTO orders_rebuilt (seq, id, partner_id, environment, esim_id, plan_id, term_months,
    amount_cents, currency, customer_email, customer_name, reference_id, balance_after_cents,
    request_id, created_at)
SELECT seq, id, partner_id, environment, esim_id, plan_id, term_months, amount_cents,
    currency, customer_email, customer_name, reference_id, balance_after_cents, request_id,
    created_at
FROM orders;
DROP TABLE orders;
ALTER TABLE orders_rebuilt RENAME TO orders;
CREATE INDEX orders_scope ON orders (partner_id, environment, seq);
CREATE INDEX orders_reference ON orders (partner_id, environment, reference_id);
CREATE INDEX orders_esim ON orders (esim_id);
