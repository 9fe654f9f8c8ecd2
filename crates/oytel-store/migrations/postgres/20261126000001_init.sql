-- Oytel schema v1 (PostgreSQL). Money is integer cents (BIGINT); every integer is BIGINT so
-- that both backends decode to the same Rust types.

CREATE TABLE partners (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    email       TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);

-- The live balance of each partner (sandbox balances are never debited).
CREATE TABLE balances (
    partner_id     TEXT PRIMARY KEY REFERENCES partners (id),
    balance_cents  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    partner_id   TEXT NOT NULL REFERENCES partners (id),
    environment  TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    key_hash     TEXT NOT NULL UNIQUE,
    hint         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_keys_partner ON api_keys (partner_id);

-- Every credit and debit of a live balance. One charge per order at most.
CREATE TABLE ledger_entries (
    seq                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    partner_id           TEXT NOT NULL REFERENCES partners (id),
    amount_cents         BIGINT NOT NULL,
    balance_after_cents  BIGINT NOT NULL,
    kind                 TEXT NOT NULL CHECK (kind IN ('credit', 'charge')),
    order_id             TEXT UNIQUE,
    description          TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX ledger_entries_partner ON ledger_entries (partner_id, seq);

CREATE TABLE orders (
    seq                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    partner_id           TEXT NOT NULL REFERENCES partners (id),
    environment          TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    esim_id              TEXT NOT NULL UNIQUE,
    plan_id              TEXT NOT NULL,
    term_months          BIGINT NOT NULL CHECK (term_months IN (1, 3, 6, 12)),
    amount_cents         BIGINT NOT NULL CHECK (amount_cents >= 0),
    currency             TEXT NOT NULL,
    customer_email       TEXT NOT NULL,
    customer_name        TEXT NOT NULL,
    reference_id         TEXT,
    balance_after_cents  BIGINT NOT NULL,
    request_id           TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX orders_scope ON orders (partner_id, environment, seq);
CREATE INDEX orders_reference ON orders (partner_id, environment, reference_id);

CREATE TABLE esims (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    partner_id       TEXT NOT NULL REFERENCES partners (id),
    environment      TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    order_id         TEXT NOT NULL UNIQUE REFERENCES orders (id),
    plan_id          TEXT NOT NULL,
    plan_name        TEXT NOT NULL,
    validity_days    BIGINT NOT NULL,
    term_months      BIGINT NOT NULL,
    iccid            TEXT NOT NULL UNIQUE,
    msisdn           TEXT NOT NULL UNIQUE,
    matching_id      TEXT NOT NULL UNIQUE,
    activation_code  TEXT NOT NULL,
    qr_token         TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL CHECK (status IN ('provisioned', 'active', 'suspended', 'expired', 'cancelled')),
    customer_email   TEXT NOT NULL,
    customer_name    TEXT NOT NULL,
    reference_id     TEXT,
    webhook_url      TEXT,
    data_limit_mb    BIGINT NOT NULL,
    data_used_mb     BIGINT NOT NULL DEFAULT 0,
    calls_made       BIGINT NOT NULL DEFAULT 0,
    sms_sent         BIGINT NOT NULL DEFAULT 0,
    activated_at     TIMESTAMPTZ,
    expires_at       TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX esims_scope ON esims (partner_id, environment, seq);
CREATE INDEX esims_reference ON esims (partner_id, environment, reference_id);
CREATE INDEX esims_email ON esims (partner_id, environment, lower(customer_email));

CREATE TABLE idempotency_keys (
    partner_id    TEXT NOT NULL,
    environment   TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    claim_token   TEXT NOT NULL,
    order_id      TEXT,
    locked_until  TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (partner_id, environment, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
